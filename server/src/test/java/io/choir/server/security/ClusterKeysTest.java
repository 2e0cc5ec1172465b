package io.choir.server.security;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.SecureRandom;
import java.util.Arrays;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ClusterKeysTest {
  @TempDir Path dir;

  private static byte[] key(int fill) {
    byte[] k = new byte[ClusterKeys.KEY_BYTES];
    Arrays.fill(k, (byte) fill);
    return k;
  }

  @Test
  void shouldWriteAFileOnlyItsOwnerCanReadAndLoadTheSameKeys() throws Exception {
    ClusterKeys keys = ClusterKeys.generate(7, new SecureRandom());
    Path file = dir.resolve("sub/cluster.key");
    keys.write(file);
    assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(file)));
    ClusterKeys loaded = ClusterKeys.load(file);
    assertEquals(7, loaded.sendingKeyId());
    assertArrayEquals(keys.derive(7, "x"), loaded.derive(7, "x"));
  }

  @Test
  void shouldRefuseAFileThatGroupOrOthersCanRead() throws Exception {
    Path file = dir.resolve("k");
    ClusterKeys.generate(1, new SecureRandom()).write(file);
    Files.setPosixFilePermissions(file, PosixFilePermissions.fromString("rw-r--r--"));
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> ClusterKeys.load(file));
    assertTrue(e.getMessage().contains("chmod 600"), e.getMessage());
  }

  @Test
  void shouldSendWithTheFirstKeyAndAcceptBoth() {
    Map<Integer, byte[]> two = new LinkedHashMap<>();
    two.put(2, key(2));
    two.put(1, key(1));
    ClusterKeys keys = ClusterKeys.of(two);
    assertEquals(2, keys.sendingKeyId());
    assertEquals(List.of(2, 1), keys.keyIds());
    assertTrue(keys.accepts(1));
    assertFalse(keys.accepts(3));
    assertNull(keys.derive(3, ClusterKeys.DATAGRAM_PURPOSE));
  }

  @Test
  void shouldDeriveADifferentSubKeyPerPurposeAndPerKey() {
    Map<Integer, byte[]> two = new LinkedHashMap<>();
    two.put(1, key(1));
    two.put(2, key(2));
    ClusterKeys keys = ClusterKeys.of(two);
    byte[] seal = keys.derive(1, ClusterKeys.DATAGRAM_PURPOSE);
    assertEquals(32, seal.length);
    assertNotEquals(Arrays.toString(seal), Arrays.toString(keys.derive(1, ClusterKeys.PEER_STREAM_PURPOSE)));
    assertNotEquals(Arrays.toString(seal), Arrays.toString(keys.derive(2, ClusterKeys.DATAGRAM_PURPOSE)));
    assertNotEquals(Arrays.toString(seal), Arrays.toString(key(1)));
  }

  @Test
  void shouldRefuseMalformedFilesSayingWhichLine() {
    String good = Base64.getEncoder().encodeToString(key(1));
    String shortKey = Base64.getEncoder().encodeToString(new byte[16]);
    assertMessage(List.of("# c", "1"), "line 2");
    assertMessage(List.of("x " + good), "line 1");
    assertMessage(List.of("0 " + good), "1..255");
    assertMessage(List.of("1 " + shortKey), "32 bytes");
    assertMessage(List.of("1 " + good, "1 " + good), "appears twice");
    assertMessage(List.of("# only a comment"), "no key");
    assertMessage(List.of("1 " + good, "2 " + good, "3 " + good), "at most 2");
    assertEquals(1, ClusterKeys.parse(List.of("", "  1 " + good + "  "), "f").sendingKeyId());
  }

  private static void assertMessage(List<String> lines, String part) {
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> ClusterKeys.parse(lines, "f"));
    assertTrue(e.getMessage().contains(part), e.getMessage());
  }
}
