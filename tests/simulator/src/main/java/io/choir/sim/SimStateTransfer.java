package io.choir.sim;

import io.choir.proto.ClientRecord;
import io.choir.proto.KeyValue;
import io.choir.server.core.Event;
import io.choir.server.statemachine.KvStateMachine;
import io.choir.server.storage.Bytes;
import io.choir.server.storage.MetaKeys;
import io.choir.server.storage.StorageSnapshot;
import java.util.List;
import java.util.SplittableRandom;

/**
 * SimStateTransfer is the simulated state transfer, over a {@link SimStream} like the real one over
 * TCP: the receiver asks, the source streams a consistent snapshot (applied op and checksum, data in
 * chunks, the client table at the end), and the receiver installs each piece as a task on its apply
 * lane ({@link KvStateMachine#beginInstall}, installData, installSnapshot), then reports
 * StateInstalled; a connection that breaks first (a cut, a crash of either side, or the source giving
 * up midway in a quarter of the transfers) reports StateTransferFailed, and the partial install stays
 * behind its marker until the next attempt restarts it. (The real StateTransferClient and Server plug
 * in here once they run on an injected transport.)
 */
final class SimStateTransfer {
  private static final int CHUNK_PAIRS = 100;

  private record Fetch(long appliedOp) {}

  private record Begin(long op, long checksum) {}

  private record Chunk(List<KeyValue> kvs) {}

  private record End(List<ClientRecord> clients) {}

  private record Refused(String reason) {}

  private final Simulation sim;
  private final SplittableRandom random;

  SimStateTransfer(Simulation sim, SplittableRandom random) {
    this.sim = sim;
    this.random = random;
  }

  /** Starts a transfer into node from replica from. */
  void fetch(SimReplica node, int from) {
    sim.bump("state_transfers");
    SimReplica source = sim.node(from);
    if (!source.up || !sim.net.reachable(node.id, from)) {
      // connection refused or timed out
      sim.clock.after(20 * SimClients.MS, node, () -> node.post(new Event.StateTransferFailed("source unreachable")));
      return;
    }
    SimStream stream = sim.connect(node.id, from);
    boolean[] finished = new boolean[1];
    stream.a.handle(m -> receive(node, stream.a, m, finished), why -> {
      if (!finished[0]) {
        finished[0] = true;
        node.post(new Event.StateTransferFailed("connection lost: " + why));
      }
    });
    stream.b.handle(m -> serve(source, stream.b, (Fetch) m), why -> { });
    stream.a.send(new Fetch(node.stateMachine.applied()));
  }

  private void serve(SimReplica source, SimStream.End end, Fetch fetch) {
    try (StorageSnapshot snap = source.storage.snapshot()) {
      byte[] applied = snap.getMeta(MetaKeys.bytes(MetaKeys.APPLIED));
      long op = applied == null ? 0 : Bytes.bytesToLong(applied);
      if (op <= fetch.appliedOp()) {
        end.send(new Refused("source at op " + op + " is not ahead of " + fetch.appliedOp()));
        return;
      }
      end.send(new Begin(op, Bytes.bytesToLong(snap.getMeta(MetaKeys.bytes(MetaKeys.CHECKSUM)))));
      boolean giveUpMidway = random.nextInt(4) == 0;
      int chunks = 0;
      byte[] from = new byte[0];
      while (true) {
        List<KeyValue> chunk = snap.scanData(from, CHUNK_PAIRS, 1 << 20);
        if (chunk.isEmpty()) {
          break;
        }
        if (giveUpMidway && chunks > 0 && random.nextBoolean()) {
          sim.bump("state_transfers_interrupted");
          end.close();
          return;
        }
        end.send(new Chunk(chunk));
        chunks++;
        from = Bytes.successor(chunk.get(chunk.size() - 1).getKey().toByteArray());
      }
      if (giveUpMidway) {
        sim.bump("state_transfers_interrupted");
        end.close();
        return;
      }
      end.send(new End(KvStateMachine.clientTable(snap)));
    }
  }

  private void receive(SimReplica node, SimStream.End end, Object m, boolean[] finished) {
    if (finished[0]) {
      return;
    }
    if (m instanceof Refused r) {
      finished[0] = true;
      end.close();
      node.post(new Event.StateTransferFailed(r.reason()));
    } else if (m instanceof Begin b) {
      end.tag = b;
      node.runApply("begin an install", () -> node.stateMachine.beginInstall());
    } else if (m instanceof Chunk c) {
      node.runApply("install a chunk", () -> node.stateMachine.installData(c.kvs()));
    } else if (m instanceof End e) {
      finished[0] = true;
      Begin b = (Begin) end.tag;
      end.close();
      node.runApply("finish an install", () -> {
        node.stateMachine.installSnapshot(b.op(), b.checksum(), e.clients());
        node.post(new Event.StateInstalled(b.op(), b.checksum()));
      });
    }
  }
}
