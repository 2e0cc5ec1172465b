package io.choir.server.replica;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.choir.server.config.ServerConfig;
import io.choir.server.core.Membership;
import io.choir.server.net.PeerDirectory;
import io.choir.server.net.StateTransferServer;
import io.choir.server.storage.MemoryStorage;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * ReplicaPeersMembershipTest checks how the peer side follows a membership change: the directory's
 * map takes the addresses the membership records (else the configured ones), keeps this replica when
 * it is retired and drops removed members; the state transfer server admits the new member set.
 */
class ReplicaPeersMembershipTest {
  @TempDir Path dir;

  private ServerConfig config(int self) throws Exception {
    Path f = dir.resolve("c.yaml");
    StringBuilder y = new StringBuilder("replica_id: " + self + "\nreplicas:\n");
    for (int id = 1; id <= 3; id++) {
      y.append("  - id: ").append(id).append("\n    client: 127.0.0.1:900").append(id)
          .append("\n    peer: 127.0.0.1:910").append(id).append('\n');
    }
    y.append("data_dir: ").append(dir.resolve("data")).append('\n');
    Files.writeString(f, y);
    return ServerConfig.load(f, Map.of());
  }

  private static Membership.Member member(int id, String peer) {
    return new Membership.Member(id, "", peer);
  }

  @Test
  void shouldMapNewMembersToTheirRecordedAddressesAndDropRemovedOnes() throws Exception {
    ServerConfig config = config(1);
    PeerDirectory directory = PeerDirectory.of(1, peers(1, 2, 3));
    // Epoch 1's members carry no peer address: the configured ones; 4 joined with its own.
    Membership m = new Membership(2, List.of(member(1, ""), member(3, ""), member(4, "127.0.0.1:9104")),
        List.of(), Membership.epochBase(2));

    directory.update(ReplicaPeers.peerMap(config, directory, m));

    assertEquals(Set.of(1, 3, 4), directory.ids());
    assertEquals(new InetSocketAddress("127.0.0.1", 9104), directory.address(4));
    assertEquals(new InetSocketAddress("127.0.0.1", 9103), directory.address(3));
  }

  @Test
  void shouldKeepARetiredReplicaInItsOwnDirectory() throws Exception {
    ServerConfig config = config(1);
    PeerDirectory directory = PeerDirectory.of(1, peers(1, 2, 3));
    Membership m = new Membership(3, List.of(member(3, ""), member(4, "127.0.0.1:9104"),
        member(5, "127.0.0.1:9105")), List.of(), Membership.epochBase(3));

    directory.update(ReplicaPeers.peerMap(config, directory, m));

    assertEquals(Set.of(1, 3, 4, 5), directory.ids());
  }

  @Test
  void shouldAdmitTheNewMembersToStateTransfers() throws Exception {
    try (StateTransferServer server = new StateTransferServer(new InetSocketAddress("127.0.0.1", 0), 3, 7L,
        Set.of(1, 2, 3), () -> 0, new MemoryStorage(), StateTransferServer.Limits.defaults(), 1)) {
      server.updateMembers(Set.of(3, 4, 5));

      assertEquals(Set.of(3, 4, 5), server.memberIds());
    }
  }

  private static Map<Integer, InetSocketAddress> peers(int... ids) {
    Map<Integer, InetSocketAddress> out = new HashMap<>();
    for (int id : ids) {
      out.put(id, new InetSocketAddress("127.0.0.1", 9100 + id));
    }
    return out;
  }
}
