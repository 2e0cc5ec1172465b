package io.choir.server.net;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TestPeerFaultsTest {
  private static final InetSocketAddress GROUP = new InetSocketAddress("239.255.0.1", 7000);
  private static final InetSocketAddress UNICAST = new InetSocketAddress("127.0.0.1", 7001);

  @TempDir
  Path dir;

  @Test
  void shouldCutOffThePeersTheFaultFileListsAndHealWhenItIsEmptiedOrRemoved() throws Exception {
    TestPeerFaults faults = new TestPeerFaults(0);
    Path file = dir.resolve("faults");
    assertFalse(faults.blocks(2), "nothing is cut before the file is read");

    Files.writeString(file, "2, 3\n");
    faults.readFaultFile(file);
    assertTrue(faults.blocks(2));
    assertTrue(faults.blocks(3));
    assertFalse(faults.blocks(1));

    Files.writeString(file, "");
    faults.readFaultFile(file);
    assertFalse(faults.blocks(2), "an empty file heals");

    Files.writeString(file, "3");
    faults.readFaultFile(file);
    Files.delete(file);
    faults.readFaultFile(file);
    assertFalse(faults.blocks(3), "a missing file heals");
  }

  @Test
  void shouldKeepTheLastPartitionWhenTheFaultFileIsUnreadable() throws Exception {
    TestPeerFaults faults = new TestPeerFaults(0);
    Path file = dir.resolve("faults");
    Files.writeString(file, "2");
    faults.readFaultFile(file);
    Files.writeString(file, "two");
    faults.readFaultFile(file);
    assertTrue(faults.blocks(2), "a half-written file does not heal the partition");
  }

  @Test
  void shouldLoseOnlyMulticastDatagramsAndOnlyWhenALossIsSet() {
    TestPeerFaults none = new TestPeerFaults(0);
    TestPeerFaults all = new TestPeerFaults(100);
    for (int i = 0; i < 100; i++) {
      assertFalse(none.losesMulticast(GROUP));
      assertTrue(all.losesMulticast(GROUP));
      assertFalse(all.losesMulticast(UNICAST), "unicast is never lost on purpose");
      assertFalse(all.losesMulticast(null), "a datagram without a recipient is not lost");
    }
  }
}
