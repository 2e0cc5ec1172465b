package io.choir.server.net.transfer;

import com.google.protobuf.ByteString;
import io.choir.proto.ClientRecord;
import io.choir.proto.Delete;
import io.choir.proto.Entry;
import io.choir.proto.KeyValue;
import io.choir.proto.PeerEnvelope;
import io.choir.proto.Put;
import io.choir.proto.RegisterSession;
import io.choir.proto.StateTransferChunk;
import io.choir.server.statemachine.KvStateMachine;
import io.choir.server.statemachine.TransferRows;
import io.choir.server.storage.Bytes;
import io.choir.server.storage.MemoryStorage;
import io.choir.server.storage.MetaKeys;
import io.choir.server.storage.Storage;
import io.choir.server.storage.StorageSnapshot;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.PriorityQueue;
import java.util.Random;
import java.util.Set;
import java.util.function.UnaryOperator;

/**
 * TransferWorld runs one source and one target replica's state transfer in virtual time, single
 * threaded and deterministic from a seed: the real {@link StateTransferSender} and {@link
 * StateTransferReceiver} over a simulated byte stream (frames in order, each with a random delay, at
 * most a window of frames in flight: the sender writes only while there is room, the receiver reads
 * only while it wants to, so backpressure reaches the sender), the target's storage steps on a
 * simulated storage thread that runs one step at a time at random later moments, and the real
 * MemoryStorage and KvStateMachine on both sides. Faults: the connection drops, the source crashes,
 * the target crashes (its storage loses what was not synced, or any prefix of it), the driver's
 * timeout fires; and the stream may tamper with chunks. The same shape as the simulator's, kept here
 * so the transfer is checked on its own, with many more runs.
 */
final class TransferWorld {
  static final long CLUSTER = 0xC0FFEEL;
  static final int SOURCE_ID = 1;
  static final int TARGET_ID = 2;
  static final int MAX_SESSIONS = 64;
  static final int MAX_REPLIES = 4;

  /** The state a storage holds, as a transfer must reproduce it. */
  record State(long applied, long checksum, List<KeyValue> data, List<ClientRecord> clients) {
    static State of(Storage storage) {
      try (StorageSnapshot snapshot = storage.snapshot()) {
        return new State(
            metaLong(snapshot.getMeta(MetaKeys.bytes(MetaKeys.APPLIED))),
            metaLong(snapshot.getMeta(MetaKeys.bytes(MetaKeys.CHECKSUM))),
            storage.scan(new byte[0], new byte[0], Integer.MAX_VALUE),
            TransferRows.clientTable(snapshot));
      }
    }

    boolean empty() {
      return applied == 0 && checksum == 0 && data.isEmpty() && clients.isEmpty();
    }

    private static long metaLong(byte[] value) {
      return value == null ? 0 : Bytes.bytesToLong(value);
    }
  }

  /** What goes wrong in a run. */
  enum Fault {
    NONE,
    DROP_CONNECTION,
    SOURCE_CRASH,
    TARGET_CRASH,
    TIMEOUT
  }

  /** One scheduled action. */
  private record Event(long timeUs, long seq, Runnable action) {}

  final Random random;
  final long seed;
  private final PriorityQueue<Event> events =
      new PriorityQueue<>(
          (a, b) -> a.timeUs != b.timeUs ? Long.compare(a.timeUs, b.timeUs) : Long.compare(a.seq, b.seq));
  private long seq;
  long nowUs;
  long steps;

  final MemoryStorage sourceStorage = new MemoryStorage();
  final KvStateMachine source = new KvStateMachine(sourceStorage, MAX_SESSIONS, MAX_REPLIES);
  private long nextSourceOp = 1;
  private final int clients;
  private final int keys;

  MemoryStorage targetStorage = new MemoryStorage();
  KvStateMachine target = new KvStateMachine(targetStorage, MAX_SESSIONS, MAX_REPLIES);
  /** The target's state before any transfer (stale but whole). */
  final State stale;
  /** The storage the target's state machine writes and the read-back reads (targetStorage, or a wrapper). */
  Storage targetIo = targetStorage;

  /** The simulated storage thread: steps run one at a time, in order. */
  private final ArrayDeque<Runnable> lane = new ArrayDeque<>();
  private boolean laneScheduled;
  /** Bumped when the target crashes: steps and cues of the dead process do nothing. */
  private long targetIncarnation;

  TransferWorld(long seed) {
    this.seed = seed;
    this.random = new Random(seed);
    this.clients = 1 + random.nextInt(8);
    this.keys = 20 + random.nextInt(300);
    applySource(31 + random.nextInt(400)); // always ahead of the stale target (at most 30 ops)
    // The target has a short stale history of its own, durable.
    MemoryStorage scratch = targetStorage;
    List<Entry> old = workload(new Random(seed ^ 0x5eed), 1, 1 + random.nextInt(30), 2, 30);
    scratch.appendLog(old, true);
    target.load();
    target.apply(old, true);
    stale = State.of(targetStorage);
  }

  /** Applies count more entries at the source (its state keeps moving during a transfer). */
  void applySource(int count) {
    List<Entry> entries = workload(random, nextSourceOp, count, clients, keys);
    nextSourceOp += count;
    source.apply(entries, random.nextBoolean());
  }

  /**
   * Entries firstOp.. : first a RegisterSession per client (when firstOp is 1), then puts of 1 to 300
   * random bytes (some overwriting) and a few deletes, from session clients with rising request ids
   * and a replicated clock of one millisecond per op.
   */
  static List<Entry> workload(Random random, long firstOp, int count, int clientCount, int keyCount) {
    List<Entry> out = new ArrayList<>(count);
    for (int i = 0; i < count; i++) {
      long op = firstOp + i;
      long clientId = 1 + (op % clientCount);
      Entry.Builder entry =
          Entry.newBuilder()
              .setOp(op)
              .setView(1)
              .setClientId(clientId)
              .setRequestId(op)
              .setFirstIncomplete(op)
              .setTimeMs(1_000_000 + op);
      if (op <= clientCount) {
        entry.setRequestId(0).setFirstIncomplete(0).setRegisterSession(
            RegisterSession.newBuilder().setTimeoutMs(3_600_000).setMaxSessions(MAX_SESSIONS));
      } else if (random.nextInt(25) == 0) {
        entry.setDelete(Delete.newBuilder().setKey(key(random, keyCount)));
      } else {
        byte[] value = new byte[1 + random.nextInt(300)];
        random.nextBytes(value);
        entry.setPut(Put.newBuilder().setKey(key(random, keyCount)).setValue(ByteString.copyFrom(value)));
      }
      out.add(entry.build());
    }
    return out;
  }

  private static ByteString key(Random random, int keyCount) {
    return ByteString.copyFromUtf8(String.format("key-%05d", random.nextInt(keyCount)));
  }

  void at(long delayUs, Runnable action) {
    events.add(new Event(nowUs + Math.max(0, delayUs), seq++, action));
  }

  /** Runs events until none is left (or a bound on their number, which a run must never reach). */
  void run() {
    long bound = 1_000_000;
    while (!events.isEmpty()) {
      if (--bound == 0) {
        throw new AssertionError("seed " + seed + ": the simulation does not settle");
      }
      Event e = events.poll();
      nowUs = e.timeUs;
      steps++;
      e.action.run();
    }
  }

  private void submitToLane(Runnable step) {
    long incarnation = targetIncarnation;
    lane.add(() -> {
      if (incarnation == targetIncarnation) {
        step.run();
      }
    });
    scheduleLane();
  }

  private void scheduleLane() {
    if (!laneScheduled && !lane.isEmpty()) {
      laneScheduled = true;
      at(random.nextInt(400), () -> {
        laneScheduled = false;
        Runnable step = lane.poll();
        if (step != null) {
          step.run();
          afterStep.run();
        }
        scheduleLane();
      });
    }
  }

  /** Checked after every storage step of the target (the invariant of the run). */
  Runnable afterStep = () -> { };

  /** How many times the target crashed. */
  long crashes() {
    return targetIncarnation;
  }

  /** Puts wrap around the target's storage (a storage that loses writes, say) and reloads the target. */
  void wrapTargetStorage(UnaryOperator<Storage> wrap) {
    targetIo = wrap.apply(targetStorage);
    target = new KvStateMachine(targetIo, MAX_SESSIONS, MAX_REPLIES);
    target.load();
  }

  /** Crashes the target now: its storage keeps the durable state and a random prefix of the rest. */
  void crashTarget() {
    targetIncarnation++;
    lane.clear();
    int unsynced = targetStorage.unsyncedWriteCount();
    targetStorage = targetStorage.crashKeeping(random.nextInt(unsynced + 1));
    targetIo = targetStorage;
    target = new KvStateMachine(targetStorage, MAX_SESSIONS, MAX_REPLIES);
    target.load();
  }

  /** How a stream may alter chunks on their way (tamper tests); identity by default. */
  interface Tamper {
    PeerEnvelope apply(PeerEnvelope chunk, long index);
  }

  /**
   * Transfer is one fetch: a connection from the target to the source, the sender at the source
   * and the receiver at the target.
   */
  final class Transfer {
    final StateTransferReceiver receiver;
    final Fault fault;
    final int windowFrames;
    final int maxQueuedSteps;
    final StateTransferSender.Config senderConfig;
    final Tamper tamper;
    StateTransferSender sender;
    /** The source's state as of the sender's snapshot. */
    State expected;
    private final ArrayDeque<long[]> arrivals = new ArrayDeque<>(); // [arrival time]
    private final ArrayDeque<PeerEnvelope> frames = new ArrayDeque<>();
    private long lastArrivalUs;
    private int inFlight;
    private boolean connected = true;
    private boolean sourceClosed; // FIN after the last frame
    private long finAtUs = Long.MAX_VALUE;
    private boolean receiverPollScheduled;
    long chunksSent;
    int maxInFlightSeen;
    int maxQueuedStepsSeen;
    private final long incarnation = targetIncarnation;

    Transfer(Fault fault, Tamper tamper) {
      this.fault = fault;
      this.tamper = tamper;
      this.windowFrames = 1 + random.nextInt(6);
      int maxQueued = 1 + random.nextInt(4);
      this.maxQueuedSteps = maxQueued;
      this.senderConfig =
          new StateTransferSender.Config(
              SOURCE_ID,
              CLUSTER,
              Set.of(SOURCE_ID, TARGET_ID, 3),
              1024 + random.nextInt(4096),
              1 + random.nextInt(24));
      this.receiver =
          new StateTransferReceiver(
              "source " + SOURCE_ID,
              CLUSTER,
              TARGET_ID,
              target.applied(),
              new StateTransferReceiver.Limits(1 << 20, maxQueued, 2048 + random.nextInt(8192)),
              InstallTarget.of(target, targetIo),
              TransferWorld.this::submitToLane,
              () -> {
                if (incarnation == targetIncarnation) {
                  scheduleReceiverPoll();
                }
              });
    }

    /** Starts the fetch: the request travels, the source opens the sender, chunks flow. */
    void start() {
      PeerEnvelope request = receiver.request(1);
      at(delay(), () -> {
        if (!connected) {
          return;
        }
        try {
          sender = StateTransferSender.open(senderConfig, request, sourceStorage.snapshot());
        } catch (StateTransferSender.Refused e) {
          closeFromSource();
          return;
        }
        expected = State.of(sourceStorage); // single threaded: nothing was applied since the snapshot
        pump();
      });
      // The source keeps applying while it streams; the snapshot must not see it.
      for (int i = random.nextInt(4); i > 0; i--) {
        at(random.nextInt(20_000), () -> applySource(1 + random.nextInt(20)));
      }
      // Most transfers here take 1 to 20 ms of virtual time: land most faults within them.
      long faultAtUs = random.nextInt(random.nextBoolean() ? 3_000 : 15_000);
      switch (fault) {
        case DROP_CONNECTION -> at(faultAtUs, this::reset);
        case SOURCE_CRASH -> at(faultAtUs, this::sourceDies);
        case TARGET_CRASH -> at(faultAtUs, () -> {
          if (incarnation == targetIncarnation) {
            connected = false;
            closeSender();
            crashTarget();
          }
        });
        case TIMEOUT -> at(faultAtUs, () -> {
          if (incarnation == targetIncarnation) {
            receiver.onTimeout("after " + faultAtUs + " us");
            afterReceiverCall();
          }
        });
        case NONE -> { }
      }
    }

    private long delay() {
      return 50 + random.nextInt(random.nextInt(10) == 0 ? 5_000 : 500);
    }

    /** The sender writes while the window has room. */
    private void pump() {
      while (connected && sender != null && !sender.done() && inFlight < windowFrames) {
        PeerEnvelope chunk = sender.next(1);
        checkChunkLimits(chunk.getStateTransferChunk());
        chunk = tamper.apply(chunk, chunksSent);
        chunksSent++;
        lastArrivalUs = Math.max(lastArrivalUs, nowUs + delay()); // in order, like TCP
        frames.add(chunk);
        arrivals.add(new long[] {lastArrivalUs});
        inFlight++;
        maxInFlightSeen = Math.max(maxInFlightSeen, inFlight);
        long arrival = lastArrivalUs;
        at(arrival - nowUs, this::scheduleReceiverPoll);
        if (sender.done()) {
          closeFromSource();
        }
      }
    }

    private void checkChunkLimits(StateTransferChunk chunk) {
      if (chunk.getKvsCount() > senderConfig.maxChunkPairs()) {
        throw new AssertionError("seed " + seed + ": a chunk of " + chunk.getKvsCount() + " pairs");
      }
      long bytes = 0;
      for (KeyValue kv : chunk.getKvsList()) {
        bytes += kv.getKey().size() + kv.getValue().size();
      }
      if (chunk.getKvsCount() > 1 && bytes > senderConfig.maxChunkBytes()) {
        throw new AssertionError("seed " + seed + ": a chunk of " + bytes + " bytes");
      }
    }

    /** The source closes after its last frame (or on refusal): the FIN follows the data. */
    private void closeFromSource() {
      sourceClosed = true;
      finAtUs = Math.max(lastArrivalUs, nowUs + delay());
      at(finAtUs - nowUs, this::scheduleReceiverPoll);
    }

    /** The connection breaks: frames still on the way are lost; both sides learn it. */
    private void reset() {
      if (!connected) {
        return;
      }
      connected = false;
      frames.clear();
      arrivals.clear();
      closeSender();
      at(delay(), () -> {
        if (incarnation == targetIncarnation) {
          receiver.onClosed();
          afterReceiverCall();
        }
      });
    }

    /**
     * The source process dies: it sends nothing more and its kernel closes the connection, so the
     * frames already on the way still arrive, then the FIN (unlike a reset, which loses them).
     */
    private void sourceDies() {
      if (!connected || sourceClosed) {
        return;
      }
      closeSender();
      sender = null;
      closeFromSource();
    }

    private void closeSender() {
      if (sender != null) {
        sender.close();
      }
    }

    private void scheduleReceiverPoll() {
      if (!receiverPollScheduled) {
        receiverPollScheduled = true;
        at(0, () -> {
          receiverPollScheduled = false;
          receiverPoll();
        });
      }
    }

    /** The receiver reads what has arrived, while it wants to; then sees the FIN. */
    private void receiverPoll() {
      if (incarnation != targetIncarnation || !connected) {
        return;
      }
      boolean consumed = false;
      while (!frames.isEmpty() && arrivals.peek()[0] <= nowUs && receiver.wantsRead()) {
        arrivals.poll();
        PeerEnvelope frame = frames.poll();
        inFlight--;
        consumed = true;
        receiver.onFrame(frame);
        maxQueuedStepsSeen = Math.max(maxQueuedStepsSeen, receiver.queuedSteps());
        if (!afterReceiverCall()) {
          return;
        }
      }
      if (frames.isEmpty() && sourceClosed && finAtUs <= nowUs) {
        receiver.onClosed();
        afterReceiverCall();
        return;
      }
      if (consumed) {
        pump();
      }
    }

    /** The receiver's driver closes once the connection is no longer wanted; false then. */
    private boolean afterReceiverCall() {
      if (!receiver.wantsConnection() && connected) {
        connected = false;
        frames.clear();
        arrivals.clear();
        closeSender();
        return false;
      }
      return connected;
    }
  }
}
