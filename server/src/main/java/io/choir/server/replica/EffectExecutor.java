package io.choir.server.replica;

import com.google.protobuf.MessageLite;
import io.choir.proto.Entry;
import io.choir.proto.MessageType;
import io.choir.proto.Prepare;
import io.choir.proto.Response;
import io.choir.server.core.Effects;
import io.choir.server.core.Effects.Effect;
import io.choir.server.core.Event;
import io.choir.server.core.LeaseReadWindow;
import io.choir.server.core.Membership;
import io.choir.server.core.ReplicaCore;
import io.choir.server.storage.Storage;
import java.util.List;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * EffectExecutor is the replica loop's logic without its thread: it owns the {@link ReplicaCore} and
 * carries out its {@link Effects} through small ports, so the server (ports are threads, queues and
 * sockets) and the simulator (ports are scheduled actors) run the same code.
 *
 * <p>Burst policy (DESIGN.md "Replication": batching without a linger timer): the caller drains a
 * burst of events (at most {@link #MAX_BURST}), {@link #begin}s, {@link #step}s each, then {@link
 * #end}s: a Tick is stepped (it sends what the burst batched and runs the timers), the effects are
 * carried out in the order Effects documents, and the time of the next Tick is returned.
 *
 * <p>Order of the effects: the view is stored (synced) before anything else, so no message of a view
 * leaves before a crash could forget the view (VR Revisited 4.2); then, in log-lane order, the
 * truncation of an abandoned suffix, the new entries and the last normal view (after the log writes it
 * vouches for); then peer sends, applies (apply lane), the truncation of the log's old end (log lane),
 * resends from the log, the start of a state transfer, reads, replies (one call per connection) and
 * client intake.
 *
 * <p>One thread at a time (the replica loop's) calls it.
 */
public final class EffectExecutor {
  /** The most events one burst takes from the loop's queue. */
  public static final int MAX_BURST = 4096;

  /** Durably records the view: a synced write that returns once it is on disk. */
  public interface ViewStore {
    void storeView(long view);
  }

  /** The storage stage's two lanes: each call queues a task on one of them, in call order. */
  public interface StoragePort {
    /** Log lane: remove the log above op (before this burst's new entries). */
    void truncateLogAfter(long op);

    /** Log lane: append entries, make them durable, report Event.Persisted(last op, epoch). */
    void persist(List<Entry> entries, long epoch);

    /** Log lane: record the last normal view (and, when caughtUp, clear the catching-up marker). */
    void storeLastNormalView(long lastNormalView, boolean caughtUp);

    /** Apply lane: apply committed entries, report Event.Applied. */
    void apply(List<Entry> entries);

    /** Log lane: remove the log below op. */
    void truncateLogBefore(long op);
  }

  /** Sends one peer message (to a replica id or {@link Effects#MULTICAST}). */
  public interface PeerPort {
    void send(int to, long view, MessageType type, MessageLite body);

    /**
     * The membership changed (Effects.PeersChanged): from now on send to, and accept from, its members
     * (a removed one is dropped). The default does nothing (a single replica, tests).
     */
    default void membersChanged(Membership membership) {}
  }

  /** Reads entries the core no longer holds from the log and resends them (see resendFromLog). */
  public interface ResendPort {
    void resend(Effects.Retransmit retransmit);
  }

  /** Starts fetching a state transfer from a replica; the result comes back as an event. */
  public interface StateTransferPort {
    void fetch(int from);
  }

  /** Executes a read the core released against the applied state and answers it. */
  public interface ReadPort {
    void read(Effects.Read read);
  }

  /** The client side: replies (all of one burst for one connection at once) and intake. */
  public interface ClientPort {
    void reply(long connectionId, List<Response> responses);

    void pauseIntake(boolean paused);
  }

  /** Every port the executor talks to. */
  public record Ports(ViewStore views, StoragePort storage, PeerPort peers, ResendPort resends,
      StateTransferPort stateTransfers, ReadPort reads, ClientPort clients) {}

  private static final Logger log = LoggerFactory.getLogger(EffectExecutor.class);

  private final ReplicaCore core;
  private final Ports ports;
  private final Effects effects = new Effects();
  private final Carrier carrier = new Carrier();
  private Consumer<LeaseReadWindow> leaseWindows;

  public EffectExecutor(ReplicaCore core, Ports ports) {
    this.core = core;
    this.ports = ports;
  }

  public ReplicaCore core() {
    return core;
  }

  /**
   * From now on every burst's end hands windows the core's {@link LeaseReadWindow}, after the burst's
   * Tick and before its effects are carried out. Set before the first burst, on the loop's thread.
   */
  public void publishLeaseWindows(Consumer<LeaseReadWindow> windows) {
    this.leaseWindows = windows;
  }

  /** Starts a burst; returns its effects, to which the caller may add replies of its own. */
  public Effects begin() {
    effects.clear();
    return effects;
  }

  /** Steps one event of the burst. */
  public void step(Event event, long nowNs) {
    core.step(event, nowNs, effects);
  }

  /**
   * Ends the burst: steps a Tick, carries out the burst's effects and returns when the core wants its
   * next Tick (absolute, the clock of nowNs; Long.MAX_VALUE: no timer).
   */
  public long end(long nowNs) {
    core.step(new Event.Tick(), nowNs, effects);
    Consumer<LeaseReadWindow> windows = leaseWindows;
    if (windows != null) {
      // Before the effects: nothing decided in this burst leaves the replica while an older window
      // is still in use (LeaseReadWindow).
      windows.accept(core.leaseReadWindow(nowNs));
    }
    execute(effects);
    return effects.nextTickNs();
  }

  /** Carries out fx's effects in the order Effects gives them. */
  void execute(Effects fx) {
    for (Effect e : fx.toExecute()) {
      e.carryOut(carrier);
    }
  }

  /** Hands each kind of effect to its port. */
  private final class Carrier implements Effects.Handler {
    @Override
    public void persistView(Effects.PersistView e) {
      ports.views().storeView(e.view());
    }

    @Override
    public void truncateLogAfter(Effects.TruncateLogAfter e) {
      ports.storage().truncateLogAfter(e.op());
    }

    @Override
    public void persist(Effects.Persist e) {
      ports.storage().persist(e.entries(), e.epoch());
    }

    @Override
    public void persistLastNormalView(Effects.PersistLastNormalView e) {
      ports.storage().storeLastNormalView(e.lastNormalView(), e.caughtUp());
    }

    @Override
    public void send(Effects.Send e) {
      ports.peers().send(e.to(), e.view(), e.type(), e.body());
    }

    @Override
    public void apply(Effects.Apply e) {
      ports.storage().apply(e.entries());
    }

    @Override
    public void truncateLogBefore(Effects.TruncateLogBefore e) {
      ports.storage().truncateLogBefore(e.op());
    }

    @Override
    public void retransmit(Effects.Retransmit e) {
      ports.resends().resend(e);
    }

    @Override
    public void fetchState(Effects.FetchState e) {
      ports.stateTransfers().fetch(e.from());
    }

    @Override
    public void read(Effects.Read e) {
      ports.reads().read(e);
    }

    @Override
    public void reply(Effects.Reply e) {
      ports.clients().reply(e.connectionId(), e.responses());
    }

    @Override
    public void pauseIntake(Effects.PauseIntake e) {
      ports.clients().pauseIntake(e.paused());
    }

    @Override
    public void peersChanged(Effects.PeersChanged e) {
      log.atInfo().addKeyValue("epoch", e.membership().epoch()).addKeyValue("voters", e.membership().voterIds())
          .addKeyValue("members", e.membership().memberIds()).log("membership changed: peers follow");
      ports.peers().membersChanged(e.membership());
    }
  }

  /**
   * Reads entries fromOp..toOp of r from the log and sends them as PREPAREs (with r's commit) packed
   * into datagrams of at most maxDatagramBytes, stopping once r.maxBytes() of entries are sent (the
   * replica asks again for the rest); ops the log no longer holds are skipped (the heartbeat's low
   * watermark sends that replica to a state transfer). Reads at most 1 MiB at a time.
   */
  public static void resendFromLog(Storage log, PeerPort peers, int maxDatagramBytes,
      Effects.Retransmit r) {
    long next = Math.max(r.fromOp(), log.firstLogOp());
    long left = r.maxBytes();
    while (next <= r.toOp() && left > 0) {
      List<Entry> chunk = log.readLog(next, r.toOp(), (int) Math.min(1 << 20, left));
      if (chunk.isEmpty()) {
        return;
      }
      for (Prepare.Builder p : ReplicaCore.packPrepares(chunk, maxDatagramBytes)) {
        peers.send(r.to(), r.view(), MessageType.PREPARE, p.setCommit(r.commit()).build());
      }
      for (Entry e : chunk) {
        left -= e.getSerializedSize();
      }
      next = chunk.get(chunk.size() - 1).getOp() + 1;
    }
  }
}
