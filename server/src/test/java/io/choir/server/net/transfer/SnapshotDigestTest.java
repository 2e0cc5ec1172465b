package io.choir.server.net.transfer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import io.choir.proto.ClientRecord;
import io.choir.proto.KeyValue;
import java.io.ByteArrayOutputStream;
import java.io.DataOutputStream;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** SnapshotDigest: the documented encoding, and that every difference of state changes the digest. */
class SnapshotDigestTest {
  private static KeyValue kv(String key, String value, long version) {
    return KeyValue.newBuilder().setKey(ByteString.copyFromUtf8(key))
        .setValue(ByteString.copyFromUtf8(value)).setVersion(version).build();
  }

  private static ClientRecord client(long id, long firstIncomplete) {
    return ClientRecord.newBuilder().setClientId(id).setFirstIncomplete(firstIncomplete).setLastOp(id * 10).build();
  }

  private static byte[] digest(long op, long checksum, List<KeyValue> data, List<ClientRecord> clients) {
    return new SnapshotDigest(op, checksum).addAllData(data).finish(clients);
  }

  @Test
  void shouldHashExactlyTheDocumentedBytes() throws Exception {
    List<KeyValue> data = List.of(kv("a", "xy", 3), kv("b", "", 4));
    List<ClientRecord> clients = List.of(client(9, 2), client(-1L, 1)); // -1 is the largest unsigned id
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    DataOutputStream out = new DataOutputStream(bytes);
    out.write("choir-snapshot-digest-v1".getBytes(StandardCharsets.US_ASCII));
    out.writeLong(17);
    out.writeLong(0xABCDEFL);
    for (KeyValue kv : data) {
      out.writeByte(1);
      out.writeInt(kv.getKey().size());
      out.write(kv.getKey().toByteArray());
      out.writeInt(kv.getValue().size());
      out.write(kv.getValue().toByteArray());
      out.writeLong(kv.getVersion());
    }
    out.writeByte(2);
    out.writeLong(2);
    for (ClientRecord c : List.of(client(9, 2), client(-1L, 1))) { // already in unsigned id order
      out.writeByte(3);
      out.writeInt(c.getSerializedSize());
      out.write(c.toByteArray());
    }
    out.writeByte(4);
    out.writeLong(2);
    byte[] expected = MessageDigest.getInstance("SHA-256").digest(bytes.toByteArray());

    assertArrayEquals(expected, digest(17, 0xABCDEFL, data, clients));
    assertEquals(SnapshotDigest.BYTES, expected.length);
  }

  @Test
  void shouldNotDependOnTheOrderTheClientTableIsGivenIn() {
    List<KeyValue> data = List.of(kv("a", "1", 1));
    List<ClientRecord> clients = new ArrayList<>(List.of(client(1, 1), client(2, 2), client(3, 3)));
    byte[] one = digest(5, 6, data, clients);
    Collections.reverse(clients);
    assertArrayEquals(one, digest(5, 6, data, clients));
  }

  @Test
  void shouldChangeWithAnyDifferenceOfState() {
    List<KeyValue> data = List.of(kv("ab", "c", 1), kv("b", "value", 2));
    List<ClientRecord> clients = List.of(client(1, 4), client(2, 5));
    byte[] base = digest(10, 99, data, clients);
    List<byte[]> variants = List.of(
        digest(11, 99, data, clients),
        digest(10, 98, data, clients),
        digest(10, 99, List.of(kv("ab", "c", 1), kv("b", "valuf", 2)), clients),
        digest(10, 99, List.of(kv("ab", "c", 1), kv("b", "value", 3)), clients),
        digest(10, 99, List.of(kv("ab", "c", 1), kv("c", "value", 2)), clients),
        digest(10, 99, List.of(kv("b", "value", 2)), clients),
        // the same bytes split differently between key and value
        digest(10, 99, List.of(kv("a", "bc", 1), kv("b", "value", 2)), clients),
        digest(10, 99, data, List.of(client(1, 4), client(2, 6))),
        digest(10, 99, data, List.of(client(1, 4))),
        digest(10, 99, data, List.of()),
        digest(10, 99, List.of(), clients));
    Set<String> seen = new HashSet<>();
    seen.add(SnapshotDigest.hex(base));
    for (byte[] v : variants) {
      assertFalse(SnapshotDigest.matches(base, v));
      assertTrue(seen.add(SnapshotDigest.hex(v)), "every variant differs from every other");
    }
    assertTrue(SnapshotDigest.matches(base, digest(10, 99, data, clients)));
  }

  @Test
  void shouldRefuseDataOutOfKeyOrderAndAMissingOrShortDigest() {
    SnapshotDigest d = new SnapshotDigest(1, 1).addData(kv("b", "", 1));
    assertThrows(IllegalArgumentException.class, () -> d.addData(kv("a", "", 1)));
    assertThrows(IllegalArgumentException.class, () -> d.addData(kv("b", "", 1)));
    byte[] done = d.finish(List.of());
    assertThrows(IllegalStateException.class, () -> d.finish(List.of()));
    assertFalse(SnapshotDigest.matches(done, new byte[0]));
    assertFalse(SnapshotDigest.matches(done, null));
    assertFalse(SnapshotDigest.matches(Arrays.copyOf(done, 16), Arrays.copyOf(done, 16)));
  }
}
