package io.choir.server.net.transfer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import io.choir.proto.ClientRecord;
import io.choir.proto.KeyValue;
import io.choir.proto.StateTransferChunk;
import io.choir.server.net.transfer.TransferWorld.Fault;
import io.choir.server.net.transfer.TransferWorld.State;
import io.choir.server.net.transfer.TransferWorld.Tamper;
import io.choir.server.storage.MetaKeys;
import io.choir.server.storage.Storage;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.UnaryOperator;
import org.junit.jupiter.api.Test;

/**
 * StateTransferSimulationTest runs the real state transfer sender and receiver over a simulated
 * stream (issue 9, item 1: chunks, backpressure, a dropped connection, a crash of either side in the
 * middle of an install) in {@link TransferWorld}, and checks the transfer's promise: the target ends
 * with exactly the source's state as of the snapshot, or the transfer fails and the target keeps the
 * "installing" marker (so nothing is applied), or it never started and the target is untouched; at
 * no moment does the target hold a state without the marker that is neither its old one nor the
 * source's; after a crash, recovery finds the old state, the source's, or wipes to empty; and the next
 * fetch always installs the source's state. The tamper tests are the end-to-end check of hole 2g: a
 * stream (or a storage) that changes what arrives is refused before anything is installed.
 *
 * <p>Seeds: the random test prints its base seed; replay one run with -Dchoir.test.seed=SEED
 * -Dchoir.test.runs=1 (every failure names the seed of its run).
 */
class StateTransferSimulationTest {
  private static final byte[] INSTALLING = MetaKeys.bytes(MetaKeys.INSTALLING);

  @Test
  void shouldInstallExactlyTheSourceStateOrKeepTheMarkerUnderEveryFault() {
    long base = Long.getLong("choir.test.seed", System.nanoTime());
    int runs = Integer.getInteger("choir.test.runs", 400);
    System.out.println("StateTransferSimulationTest seed=" + base + " runs=" + runs
        + " (replay one run: -Dchoir.test.seed=SEED -Dchoir.test.runs=1)");
    Map<String, Integer> outcomes = new TreeMap<>();
    long maxSteps = 0;
    for (int i = 0; i < runs; i++) {
      long seed = base + i;
      try {
        String outcome = runOne(seed);
        outcomes.merge(outcome, 1, Integer::sum);
      } catch (AssertionError | RuntimeException e) {
        throw new AssertionError("run with seed " + seed + " failed (replay: -Dchoir.test.seed=" + seed
            + " -Dchoir.test.runs=1): " + e.getMessage(), e);
      }
    }
    System.out.println("StateTransferSimulationTest outcomes " + outcomes);
    if (runs >= 200) {
      // The faults must actually land mid-install, not only before or after it.
      assertTrue(outcomes.getOrDefault("TARGET_CRASH wiped", 0) > 0, "no crash wiped an install: " + outcomes);
      assertTrue(outcomes.keySet().stream().anyMatch(k -> k.endsWith("failed with marker")),
          "no failure kept a marker: " + outcomes);
    }
  }

  /** One run: a transfer under a fault, its checks, then a clean retry. Returns a label. */
  private static String runOne(long seed) {
    TransferWorld w = new TransferWorld(seed);
    Fault fault = Fault.values()[w.random.nextInt(Fault.values().length)];
    TransferWorld.Transfer t = w.new Transfer(fault, (chunk, index) -> chunk);
    w.afterStep = () -> checkMarkerOrWhole(w, w.stale, t.expected);
    t.start();
    w.run();
    assertTrue(t.maxInFlightSeen <= t.windowFrames, "in flight " + t.maxInFlightSeen);
    // Reading stops at maxQueuedChunks steps; the frame read last may add two (beginInstall, data).
    assertTrue(t.maxQueuedStepsSeen <= t.maxQueuedSteps + 1,
        "queued " + t.maxQueuedStepsSeen + " of at most " + t.maxQueuedSteps);
    String label;
    boolean crashed = w.crashes() > 0;
    if (crashed) {
      assertNull(w.targetStorage.getMeta(INSTALLING), "recovery clears the marker");
      State now = State.of(w.targetStorage);
      if (w.target.wipedInterruptedInstall()) {
        assertTrue(now.empty(), "a wiped install leaves the empty state");
        assertEquals(0, w.targetStorage.lastLogOp());
        label = "TARGET_CRASH wiped";
      } else if (now.equals(w.stale)) {
        label = "TARGET_CRASH before the install";
      } else {
        assertEquals(t.expected, now, "after a crash: the old state, the empty one, or the source's");
        label = "TARGET_CRASH after the install";
      }
    } else {
      assertTrue(t.receiver.result().isDone(), "the transfer has an outcome once everything settled");
      label = fault + " " + checkOutcome(w, t);
      if (fault == Fault.NONE) {
        assertEquals("NONE installed", label);
      }
    }
    // The next fetch, without faults, installs whatever the source holds then.
    long appliedBefore = w.target.applied();
    State before = State.of(w.targetStorage);
    TransferWorld.Transfer retry = w.new Transfer(Fault.NONE, (chunk, index) -> chunk);
    w.afterStep = () -> checkMarkerOrWhole(w, before, retry.expected);
    retry.start();
    w.run();
    assertNotNull(retry.expected, "the source answered");
    if (retry.expected.applied() > appliedBefore) {
      assertEquals("installed", checkOutcome(w, retry), "the retry installs");
    } else {
      TransferFailedException e = failure(retry);
      assertFalse(e.installStarted(), "a snapshot not ahead is refused before storage is touched");
      assertEquals(before, State.of(w.targetStorage));
    }
    return label;
  }

  /** Checks a settled transfer's outcome against the target's storage; returns a label. */
  private static String checkOutcome(TransferWorld w, TransferWorld.Transfer t) {
    if (!t.receiver.result().isCompletedExceptionally()) {
      StateTransferReceiver.Installed installed = t.receiver.result().join();
      assertEquals(t.expected.applied(), installed.op());
      assertEquals(t.expected.checksum(), installed.checksum());
      assertEquals(t.expected, State.of(w.targetStorage), "exactly the source's state");
      assertNull(w.targetStorage.getMeta(INSTALLING));
      assertEquals(0, w.targetStorage.lastLogOp(), "the old log is gone");
      assertFalse(w.target.installing());
      assertEquals(t.expected.applied(), w.target.applied());
      assertEquals(t.expected.checksum(), w.target.checksum());
      assertEquals(t.expected.clients().size(), w.target.clientCount());
      for (ClientRecord record : t.expected.clients()) {
        assertEquals(record, w.target.clientRecord(record.getClientId()));
      }
      return "installed";
    }
    TransferFailedException e = failure(t);
    if (e.installStarted()) {
      assertNotNull(w.targetStorage.getMeta(INSTALLING), "a started install keeps its marker: " + e.getMessage());
      assertTrue(w.target.installing(), "nothing may be applied: " + e.getMessage());
      return "failed with marker";
    }
    assertNull(w.targetStorage.getMeta(INSTALLING));
    assertEquals(w.stale.applied(), State.of(w.targetStorage).applied());
    return "failed untouched";
  }

  private static TransferFailedException failure(TransferWorld.Transfer t) {
    ExecutionException e =
        assertThrows(ExecutionException.class, () -> t.receiver.result().get());
    return assertInstanceOf(TransferFailedException.class, e.getCause());
  }

  /**
   * The invariant after every storage step: without the marker, the target holds a whole state, its
   * old one or the source's as of the snapshot, never a mix.
   */
  private static void checkMarkerOrWhole(TransferWorld w, State old, State expected) {
    if (w.targetStorage.getMeta(INSTALLING) != null) {
      return;
    }
    State now = State.of(w.targetStorage);
    if (!now.equals(old) && !now.equals(expected)) {
      throw new AssertionError("seed " + w.seed + ": a state without the marker that is neither the old"
          + " one nor the source's (applied " + now.applied() + ", " + now.data().size() + " pairs)");
    }
  }

  // ---- Hole 2g: what arrives is verified end to end before it is installed. ----

  /** A world whose source has plenty of data, and a transfer through tamper. */
  private static TransferWorld.Transfer tampered(long seed, Tamper tamper, TransferWorld w) {
    w.applySource(300);
    TransferWorld.Transfer t = w.new Transfer(Fault.NONE, tamper);
    t.start();
    w.run();
    return t;
  }

  /** Checks that t was refused with the marker kept, and that a clean fetch then installs. */
  private static void assertRefusedThenRecovered(TransferWorld w, TransferWorld.Transfer t, String why) {
    TransferFailedException e = failure(t);
    assertTrue(e.installStarted(), why + ": " + e.getMessage());
    assertTrue(e.getMessage().contains(why), "expected '" + why + "' in: " + e.getMessage());
    assertNotNull(w.targetStorage.getMeta(INSTALLING), "the marker stays: nothing is installed");
    assertTrue(w.target.installing(), "nothing may be applied");
    assertEquals(0, w.target.applied());
    TransferWorld.Transfer retry = w.new Transfer(Fault.NONE, (chunk, index) -> chunk);
    retry.start();
    w.run();
    assertEquals("installed", checkOutcome(w, retry));
  }

  /** Applies edit to the first chunk that has pairs, once. */
  private static Tamper onFirstChunkWithPairs(UnaryOperator<StateTransferChunk> edit) {
    AtomicBoolean done = new AtomicBoolean();
    return (envelope, index) -> {
      StateTransferChunk chunk = envelope.getStateTransferChunk();
      if (done.get() || chunk.getKvsCount() == 0) {
        return envelope;
      }
      done.set(true);
      return envelope.toBuilder().setStateTransferChunk(edit.apply(chunk)).build();
    };
  }

  private static final long[] TAMPER_SEEDS = {1, 2, 3, 42, 1009};

  @Test
  void shouldRefuseAStreamThatCorruptsOneValue() {
    for (long seed : TAMPER_SEEDS) {
      TransferWorld w = new TransferWorld(seed);
      Tamper corrupt = onFirstChunkWithPairs(chunk -> {
        KeyValue kv = chunk.getKvs(0);
        byte[] value = kv.getValue().toByteArray();
        value[0] ^= 1;
        return chunk.toBuilder().setKvs(0, kv.toBuilder().setValue(ByteString.copyFrom(value))).build();
      });
      assertRefusedThenRecovered(w, tampered(seed, corrupt, w), "does not verify");
    }
  }

  @Test
  void shouldRefuseAStreamThatChangesOneVersion() {
    for (long seed : TAMPER_SEEDS) {
      TransferWorld w = new TransferWorld(seed);
      Tamper version = onFirstChunkWithPairs(chunk -> chunk.toBuilder()
          .setKvs(0, chunk.getKvs(0).toBuilder().setVersion(chunk.getKvs(0).getVersion() + 1)).build());
      assertRefusedThenRecovered(w, tampered(seed, version, w), "does not verify");
    }
  }

  @Test
  void shouldRefuseAStreamThatDropsOnePair() {
    for (long seed : TAMPER_SEEDS) {
      TransferWorld w = new TransferWorld(seed);
      Tamper drop = onFirstChunkWithPairs(chunk -> chunk.toBuilder().removeKvs(0).build());
      assertRefusedThenRecovered(w, tampered(seed, drop, w), "does not verify");
    }
  }

  @Test
  void shouldRefuseAStreamThatChangesTheChecksumOfEveryChunk() {
    for (long seed : TAMPER_SEEDS) {
      TransferWorld w = new TransferWorld(seed);
      Tamper checksum = (envelope, index) -> envelope.toBuilder().setStateTransferChunk(
          envelope.getStateTransferChunk().toBuilder()
              .setChecksum(envelope.getStateTransferChunk().getChecksum() ^ 1)).build();
      assertRefusedThenRecovered(w, tampered(seed, checksum, w), "does not verify");
    }
  }

  @Test
  void shouldRefuseAStreamThatChangesTheChecksumOfOneChunkMidStream() {
    // Caught by the per-chunk check (op and checksum constant), before or after beginInstall ran.
    for (long seed : TAMPER_SEEDS) {
      TransferWorld w = new TransferWorld(seed);
      Tamper checksum = (envelope, index) -> index != 1 ? envelope : envelope.toBuilder().setStateTransferChunk(
          envelope.getStateTransferChunk().toBuilder()
              .setChecksum(envelope.getStateTransferChunk().getChecksum() ^ 1)).build();
      TransferWorld.Transfer t = tampered(seed, checksum, w);
      TransferFailedException e = failure(t);
      assertTrue(e.getMessage().contains("checksum"), e.getMessage());
      assertEquals(e.installStarted() ? "failed with marker" : "failed untouched", checkOutcome(w, t));
    }
  }

  @Test
  void shouldRefuseALastChunkWithoutADigest() {
    for (long seed : TAMPER_SEEDS) {
      TransferWorld w = new TransferWorld(seed);
      Tamper strip = (envelope, index) -> !envelope.getStateTransferChunk().getLast() ? envelope
          : envelope.toBuilder().setStateTransferChunk(
              envelope.getStateTransferChunk().toBuilder().clearDigest()).build();
      assertRefusedThenRecovered(w, tampered(seed, strip, w), "no digest");
    }
  }

  @Test
  void shouldRefuseAnInstallWhoseStorageSilentlyDroppedAWrite() {
    for (long seed : TAMPER_SEEDS) {
      TransferWorld w = new TransferWorld(seed);
      w.wrapTargetStorage(TransferWorldStorages::dropsTheFirstInstalledPair);
      TransferWorld.Transfer t = tampered(seed, (chunk, index) -> chunk, w);
      TransferFailedException e = failure(t);
      assertTrue(e.installStarted());
      assertTrue(e.getMessage().contains("does not verify"), e.getMessage());
      assertNotNull(w.targetStorage.getMeta(INSTALLING), "the marker stays");
      assertTrue(w.target.installing());
    }
  }

  @Test
  void shouldInstallAnUntamperedStreamForEveryTamperSeed() {
    // The control of the tamper tests: the same worlds without tampering install.
    Map<Fault, Integer> none = new EnumMap<>(Fault.class);
    for (long seed : TAMPER_SEEDS) {
      TransferWorld w = new TransferWorld(seed);
      TransferWorld.Transfer t = tampered(seed, (chunk, index) -> chunk, w);
      assertEquals("installed", checkOutcome(w, t));
      assertTrue(t.chunksSent > 2, "several chunks: " + t.chunksSent);
      none.merge(Fault.NONE, 1, Integer::sum);
    }
    assertEquals(TAMPER_SEEDS.length, none.get(Fault.NONE));
  }

  /** Storages that misbehave, for the tests (a proxy, so new Storage methods pass through). */
  static final class TransferWorldStorages {
    private TransferWorldStorages() {}

    /** A storage whose first installData that carries pairs silently loses its first pair. */
    @SuppressWarnings("unchecked")
    static Storage dropsTheFirstInstalledPair(Storage delegate) {
      boolean[] dropped = {false};
      return (Storage) Proxy.newProxyInstance(
          Storage.class.getClassLoader(),
          new Class<?>[] {Storage.class},
          (proxy, method, args) -> {
            Object[] actual = args;
            if (method.getName().equals("installData") && !dropped[0]) {
              List<KeyValue> kvs = (List<KeyValue>) args[0];
              if (!kvs.isEmpty()) {
                dropped[0] = true;
                actual = new Object[] {new ArrayList<>(kvs.subList(1, kvs.size()))};
              }
            }
            try {
              return method.invoke(delegate, actual);
            } catch (InvocationTargetException e) {
              throw e.getCause();
            }
          });
    }
  }

}
