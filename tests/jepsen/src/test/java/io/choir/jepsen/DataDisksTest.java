package io.choir.jepsen;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The data disks' pure parts (commands, mount table, filler) and the cluster settings that ask for them. */
class DataDisksTest {
  @TempDir
  Path tmp;

  @Test
  void mkfsMakesAnExt2WithoutReservedBlocksAndMountUsesALoopDevice() {
    List<String> mkfs = DataDisks.mkfsCommand(Path.of("/tmp/d/n1.img"), "n1");
    assertTrue(mkfs.get(0).endsWith("mkfs.ext2"), mkfs.toString());
    assertEquals(List.of("-q", "-F", "-m", "0", "-L", "choir-n1", "/tmp/d/n1.img"), mkfs.subList(1, mkfs.size()));
    assertEquals(List.of("mount", "-t", "ext2", "-o", "loop", "/tmp/d/n1.img", "/tmp/d/n1"),
        DataDisks.mountCommand(Path.of("/tmp/d/n1.img"), Path.of("/tmp/d/n1")));
  }

  @Test
  void mountsUnderFindsOnlyTheRunsMountsDeepestFirst() {
    String mountinfo = String.join("\n",
        "22 27 0:21 / /proc rw,relatime - proc proc rw",
        "43 27 7:0 / /tmp/disks/run1/n1 rw,relatime - ext2 /dev/loop0 rw",
        "44 27 7:1 / /tmp/disks/run1/n2 rw,relatime - ext2 /dev/loop1 rw",
        "45 27 7:2 / /tmp/disks/run10/n1 rw,relatime - ext2 /dev/loop2 rw",
        "46 43 0:50 / /tmp/disks/run1/n1/deeper\\040dir rw - tmpfs tmpfs rw",
        "47 27 0:51 / /tmp/disks/run1 rw - tmpfs tmpfs rw");
    assertEquals(List.of("/tmp/disks/run1/n1/deeper dir", "/tmp/disks/run1/n1", "/tmp/disks/run1/n2", "/tmp/disks/run1"),
        DataDisks.mountsUnder(mountinfo, Path.of("/tmp/disks/run1")));
    assertEquals(List.of(), DataDisks.mountsUnder(mountinfo, Path.of("/tmp/disks/run2")));
  }

  @Test
  void fillStopsAtTheLimitWhenTheDiskHasRoom() throws Exception {
    Path f = tmp.resolve(DataDisks.FILLER);
    long limit = (3L << 20) + 5000; // 3 MiB in big pieces, then 4 KiB and 1 KiB pieces up to the limit
    assertEquals((3L << 20) + 4096, DataDisks.fill(f, limit));
    assertEquals((3L << 20) + 4096, Files.size(f));
  }

  @Test
  void settingsKeepTheSixArgumentConstructorAndDefaultToDataDisks() {
    ClusterSettings s = new ClusterSettings(3, "choir:latest", "r", Map.of(), "-Xmx64m", Duration.ofSeconds(9));
    assertEquals(Long.getLong("choir.jepsen.dataDiskMb", ClusterSettings.DATA_DISK_MB_DEFAULT), s.dataDiskMegabytes());
    assertEquals(s.dataDiskMegabytes(), s.withServerSettings(Map.of("log_level", "debug")).dataDiskMegabytes());
    assertEquals(0, s.withDataDiskMegabytes(0).dataDiskMegabytes(), "0 turns the disks off");
    assertThrows(IllegalArgumentException.class, () -> s.withDataDiskMegabytes(16), "too small for RocksDB");
    assertEquals(s.dataDiskMegabytes(), ClusterSettings.defaults(3, "r").dataDiskMegabytes());
    assertTrue(s.tls(), "clients over TLS by default");
    assertFalse(s.withTls(false).withDataDiskMegabytes(0).withServerSettings(Map.of()).tls(), "kept by every with*");
  }
}
