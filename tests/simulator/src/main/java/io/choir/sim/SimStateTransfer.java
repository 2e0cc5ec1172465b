package io.choir.sim;

import io.choir.proto.MembershipRecord;
import io.choir.proto.PeerEnvelope;
import io.choir.server.core.Event;
import io.choir.server.net.transfer.InstallTarget;
import io.choir.server.net.transfer.StateTransferReceiver;
import io.choir.server.net.transfer.StateTransferSender;
import io.choir.server.net.transfer.TransferFailedException;
import io.choir.server.statemachine.TransferRows;
import io.choir.server.storage.StorageSnapshot;
import java.util.ArrayDeque;
import java.util.HashSet;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.concurrent.CompletionException;

/**
 * SimStateTransfer drives the server's own state-transfer machines ({@link StateTransferSender} at the
 * source, {@link StateTransferReceiver} at the replica that catches up) over a {@link SimStream}, as
 * StateTransferServer and StateTransferClient do over TCP: the receiver's install steps run on its
 * apply lane, it reads only while it wants to (each frame it takes gives the sender one more frame of
 * window, so a slow install holds the sender back), it closes once it has the last chunk, and its
 * result posts StateInstalled or StateTransferFailed to the replica loop. A connection breaks when a
 * link is cut or either side crashes; a quarter of the sources give up midway (an abortive close); a
 * fetch that hears nothing times out. Every end-to-end digest check runs as in production.
 */
final class SimStateTransfer {
  /** Frames the source may have in flight before the receiver takes one (the TCP window). */
  private static final int WINDOW_FRAMES = 3;
  private static final long FETCH_TIMEOUT_NS = 2_000 * SimClients.MS;
  private static final long CLUSTER_ID_HASH = 0x51C401_0001L;
  /** The receiver took a frame: the sender may send one more. */
  private static final Object CREDIT = new Object() {
    @Override
    public String toString() {
      return "credit";
    }
  };

  private final Simulation sim;
  private final SimConfig cfg;
  private final SplittableRandom random;

  SimStateTransfer(Simulation sim, SimConfig cfg, SplittableRandom random) {
    this.sim = sim;
    this.cfg = cfg;
    this.random = random;
  }

  private Set<Integer> members() {
    Set<Integer> ids = new HashSet<>();
    for (int id = 1; id <= cfg.replicas(); id++) {
      ids.add(id);
    }
    return ids;
  }

  /** Starts a transfer into node from replica from (StateTransferClient.fetch). */
  void fetch(SimReplica node, int from) {
    sim.bump("state_transfers");
    SimReplica source = sim.node(from);
    if (!source.up || !sim.net.reachable(node.id, from)) {
      // connection refused, or the connect timed out
      sim.clock.after(20 * SimClients.MS, node,
          () -> node.post(new Event.StateTransferFailed("source " + from + " unreachable")));
      return;
    }
    SimStream stream = sim.connect(node.id, from);
    // The snapshot's membership row travels beside it (the server's sender does not carry it yet).
    MembershipRecord[] row = new MembershipRecord[1];
    new Receiving(node, stream.a, row).start(from);
    new Serving(source, stream.b, row);
  }

  /** The receiving side: the StateTransferClient's driver of one receiver. */
  private final class Receiving {
    final SimReplica node;
    final SimStream.End end;
    final ArrayDeque<PeerEnvelope> unread = new ArrayDeque<>();
    StateTransferReceiver receiver;

    final MembershipRecord[] row;

    Receiving(SimReplica node, SimStream.End end, MembershipRecord[] row) {
      this.node = node;
      this.end = end;
      this.row = row;
    }

    void start(int from) {
      receiver = new StateTransferReceiver("node " + from, CLUSTER_ID_HASH, node.id, node.stateMachine.applied(),
          StateTransferReceiver.Limits.defaults(), InstallTarget.of(node.stateMachine, node.storage),
          step -> node.runApply("a state transfer step", step),
          () -> sim.clock.after(0, node, this::pump)); // the lane thread hands back to the driver
      receiver.result().whenComplete((installed, failure) -> {
        if (failure == null) {
          sim.bump("state_transfers_installed");
          // Epoch 0: the bootstrap membership, nothing to write (a cluster that never changed).
          MembershipRecord members = row[0] == null || row[0].getEpoch() == 0 ? null : row[0];
          if (members != null) {
            node.stateMachine.installMembership(members);
          }
          node.post(new Event.StateInstalled(installed.op(), installed.checksum(), members));
        } else {
          Throwable cause = failure instanceof CompletionException c ? c.getCause() : failure;
          sim.bump(cause instanceof TransferFailedException t && t.installStarted()
              ? "state_transfers_failed_midway" : "state_transfers_failed");
          node.post(new Event.StateTransferFailed(String.valueOf(cause.getMessage())));
        }
      });
      end.handle(m -> {
        unread.add((PeerEnvelope) m);
        pump();
      }, why -> {
        unread.clear();
        receiver.onClosed();
      });
      end.send(receiver.request(node.core.view()));
      sim.clock.after(FETCH_TIMEOUT_NS, node, () -> {
        if (!receiver.result().isDone()) {
          receiver.onTimeout("after " + FETCH_TIMEOUT_NS / SimClients.MS + " ms");
          end.close();
        }
      });
    }

    /** Reads while the receiver wants to, and closes once it has what it needs. */
    void pump() {
      while (receiver.wantsRead() && !unread.isEmpty()) {
        receiver.onFrame(unread.poll());
        end.send(CREDIT);
      }
      if (!receiver.wantsConnection() && !end.broken()) {
        end.close();
      }
    }
  }

  /** The source side: StateTransferServer's handling of one connection. */
  private final class Serving {
    final SimReplica source;
    final SimStream.End end;
    final StateTransferSender.Config config;
    StateTransferSender sender;
    int window = WINDOW_FRAMES;
    /** Frames after which this source gives up (an abortive close), or -1. */
    int giveUpAfter = -1;
    int sent;

    final MembershipRecord[] row;

    Serving(SimReplica source, SimStream.End end, MembershipRecord[] row) {
      this.source = source;
      this.end = end;
      this.row = row;
      this.config = new StateTransferSender.Config(source.id, CLUSTER_ID_HASH, members(), 1 << 16,
          1 + random.nextInt(3));
      end.handle(this::onMessage, why -> close());
    }

    private void onMessage(Object m) {
      if (m == CREDIT) {
        window++;
        sendMore();
      } else if (sender == null) {
        PeerEnvelope request = (PeerEnvelope) m;
        try {
          StorageSnapshot snapshot = source.storage.snapshot();
          row[0] = TransferRows.membership(snapshot);
          sender = StateTransferSender.open(config, request, snapshot);
        } catch (StateTransferSender.Refused e) {
          sim.bump("state_transfers_refused");
          end.close();
          return;
        }
        if (random.nextInt(4) == 0) {
          giveUpAfter = random.nextInt(3);
        }
        sendMore();
      }
    }

    private void sendMore() {
      while (window > 0 && sender != null && !sender.done()) {
        if (sent == giveUpAfter) {
          sim.bump("state_transfers_interrupted");
          close();
          end.close();
          return;
        }
        end.send(sender.next(source.core == null ? 0 : source.core.view()));
        sent++;
        window--;
      }
      if (sender != null && sender.done()) {
        end.closeAfterDelivery(); // the last chunk closes the connection
      }
    }

    private void close() {
      if (sender != null) {
        sender.close();
      }
    }
  }
}
