package io.choir.server.statemachine;

import static io.choir.server.statemachine.KvStateMachineTest.casValue;
import static io.choir.server.statemachine.KvStateMachineTest.del;
import static io.choir.server.statemachine.KvStateMachineTest.entriesFrom;
import static io.choir.server.statemachine.KvStateMachineTest.put;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import io.choir.proto.Entry;
import io.choir.proto.Get;
import io.choir.proto.KeyValue;
import io.choir.proto.Request;
import io.choir.proto.Response;
import io.choir.proto.Status;
import io.choir.server.storage.ForwardingStorage;
import io.choir.server.storage.MemoryStorage;
import io.choir.server.storage.Storage;
import io.choir.server.storage.Versioned;
import io.choir.server.storage.WriteSet;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The cache of recently used values ({@link RecentValues}): bounded by bytes, and a state machine that
 * uses it answers, hashes, stores and reports exactly what one without it does, also when entries are
 * evicted all the time and when the state is replaced under it; and what readers on other threads
 * see of it ({@link RecentValues#readable}): only what storage holds, never part of an apply call.
 */
class RecentValuesTest {
  private static byte[] b(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }

  @Test
  void shouldKnowWhatItWasToldAndForgetTheLeastRecentlyUsedBeyondItsBound() {
    long one = 1 + 1 + RecentValues.ENTRY_OVERHEAD_BYTES; // a one-byte key with a one-byte value
    RecentValues r = new RecentValues(4 * one);
    r.written(b("a"), new Versioned(b("1"), 1));
    r.learned(b("b"), null); // an absence is knowledge too
    r.written(b("c"), new Versioned(b("3"), 3));
    r.written(b("e"), new Versioned(b("5"), 5));
    assertTrue(r.lookup(b("a")).known()); // a is now the most recently used
    r.written(b("d"), new Versioned(b("4"), 4)); // over the bound: b, the least recently used, goes

    assertFalse(r.lookup(b("b")).known());
    assertArrayEquals(b("1"), r.lookup(b("a")).value().value());
    assertEquals(4, r.lookup(b("d")).value().version());
    assertEquals(4, r.size());
    assertTrue(r.bytes() <= 4 * one);

    r.written(b("a"), null);
    RecentValues.Looked deleted = r.lookup(b("a"));
    assertTrue(deleted.known());
    assertNull(deleted.value());

    r.clear();
    assertFalse(r.lookup(b("d")).known());
    assertEquals(0, r.bytes());
  }

  @Test
  void shouldNotKeepAValueTooLargeForItsBoundNorAnOlderOneOfTheSameKey() {
    RecentValues r = new RecentValues(4096);
    r.written(b("k"), new Versioned(b("small"), 1));
    r.written(b("k"), new Versioned(new byte[2048], 2));

    assertFalse(r.lookup(b("k")).known()); // neither the huge value nor the replaced small one
    assertEquals(0, r.bytes());
  }

  @Test
  void shouldShowReadersOnlyWhatStorageHoldsAndNothingWhileAWriteSetGoesToStorage() {
    long one = 1 + 1 + RecentValues.ENTRY_OVERHEAD_BYTES;
    RecentValues r = new RecentValues(4 * one);
    r.written(b("a"), new Versioned(b("1"), 1));
    assertEquals(1, r.readable(b("a")).version()); // written: its write set is in storage

    r.writing(); // the next call's write set goes to storage: readers ask storage meanwhile
    assertNull(r.readable(b("a")));
    r.written(b("c"), new Versioned(b("4"), 4));
    assertNull(r.readable(b("c")));
    r.published();
    assertEquals(1, r.readable(b("a")).version());
    assertEquals(4, r.readable(b("c")).version());

    r.learned(b("b"), null); // learned from storage between writes: storage's, readable at once
    assertTrue(r.readable(b("b")) == RecentValues.ABSENT);
    r.learned(b("d"), new Versioned(b("5"), 5));
    r.learned(b("f"), new Versioned(b("6"), 6)); // over the bound: a, the least recently used, goes
    assertNull(r.readable(b("a")));
    assertEquals(5, r.readable(b("d")).version());

    r.written(b("d"), new Versioned(new byte[2], 6)); // over a quarter of the bound: neither kept nor readable
    assertNull(r.readable(b("d")));
    r.clear();
    assertNull(r.readable(b("c")));
    r.written(b("e"), new Versioned(b("7"), 7)); // after a clear readers see what is written again
    assertEquals(7, r.readable(b("e")).version());
  }

  /** The key a single-key entry names, or null. */
  private static String keyOf(Entry e) {
    return switch (e.getCommandCase()) {
      case PUT -> e.getPut().getKey().toStringUtf8();
      case DELETE -> e.getDelete().getKey().toStringUtf8();
      case COMPARE_AND_SET -> e.getCompareAndSet().getKey().toStringUtf8();
      default -> null;
    };
  }

  private static Request getOf(String key) {
    return Request.newBuilder().setRequestId(1).setGet(Get.newBuilder().setKey(ByteString.copyFromUtf8(key))).build();
  }

  /**
   * A storage that holds nothing "in memory" (as a RocksDB whose memtables and cache miss) and lets
   * the test look at the state machine's answers while an apply call's write set is being written.
   */
  private static final class ProbedWrites extends ForwardingStorage {
    Runnable duringWrite = () -> { };

    ProbedWrites() {
      super(new MemoryStorage());
    }

    @Override
    public void write(WriteSet set, boolean sync) {
      delegate.write(set, sync);
      duringWrite.run(); // in storage, before the call returns and the applied number moves on
    }
  }

  @Test
  void shouldAnswerGetsFromMemoryWithTheAppliedValuesAndWithStorageWhileAWriteSetIsWritten() {
    ProbedWrites storage = new ProbedWrites();
    KvStateMachine sm = new KvStateMachine(storage, 3, 3, 60_000, 1 << 20);
    sm.load();
    sm.apply(entriesFrom(1, put(0, 1, "k", "old")), true);
    // Answered from the recent values: storage alone would send it to the read pool (null).
    Response old = sm.readFromMemory(getOf("k"));
    assertEquals("old", old.getValue().toStringUtf8());
    assertEquals(1, old.getOp());

    // A CAS of "nope" (absent, so it fails) learns its absence from storage; the same call writes k.
    List<Response> during = new ArrayList<>();
    storage.duringWrite = () -> {
      during.add(sm.readFromMemory(getOf("k")));
      during.add(sm.readFromMemory(getOf("nope")));
    };
    sm.apply(entriesFrom(2, put(0, 2, "k", "new"), casValue(0, 3, "nope", "y", "x")), true);
    // Storage already holds "new": an answer of "old" now, after a reader that read "new" from
    // storage, would go back in time. So while the write set is written, memory answers nothing.
    assertNull(during.get(0));
    assertNull(during.get(1));

    storage.duringWrite = () -> { };
    Response now = sm.readFromMemory(getOf("k"));
    assertEquals("new", now.getValue().toStringUtf8());
    assertEquals(3, now.getOp());
    assertEquals(Status.NOT_FOUND, sm.readFromMemory(getOf("nope")).getStatus()); // the learned absence
    assertNull(sm.readFromMemory(getOf("never-seen"))); // not known here: the read pool asks storage
  }

  @Test
  void shouldKeepNothingWhenOff() {
    RecentValues r = new RecentValues(0);
    r.written(b("a"), new Versioned(b("1"), 1));
    assertFalse(r.lookup(b("a")).known());
    assertEquals(0, r.size());
  }

  /** Records what a listener hears, as text. */
  private static final class Heard implements ChangeListener {
    final List<String> lines = new ArrayList<>();

    @Override
    public void applied(List<Change> changes, long applied) {
      for (Change c : changes) {
        lines.add(c.revision() + " " + new String(c.key(), StandardCharsets.UTF_8) + " "
            + (c.value() == null ? "-" : new String(c.value(), StandardCharsets.UTF_8)) + " prev "
            + (c.prevValue() == null ? "-" : new String(c.prevValue(), StandardCharsets.UTF_8) + "@" + c.prevVersion()));
      }
      lines.add("applied " + applied);
    }

    @Override
    public void replaced(long applied) {
      lines.add("replaced " + applied);
    }
  }

  @Test
  void shouldAnswerHashAndReportLikeAStateMachineWithoutIt() {
    long seed = Long.getLong("choir.test.seed", System.nanoTime());
    System.out.println("RecentValuesTest seed " + seed + " (replay with -Dchoir.test.seed=" + seed + ")");
    Random random = new Random(seed);
    for (int run = 0; run < 20; run++) {
      List<Entry> entries = KvStateMachineTest.randomEntries(random, 300, 3);
      Storage plainStorage = new MemoryStorage();
      Storage tinyStorage = new MemoryStorage();
      KvStateMachine plain = new KvStateMachine(plainStorage, 3, 3, 60_000, 0);
      // Room for about two keys: nearly every write evicts one, and some values are never kept.
      KvStateMachine tiny = new KvStateMachine(tinyStorage, 3, 3, 60_000, 2 * (RecentValues.ENTRY_OVERHEAD_BYTES + 16));
      KvStateMachine roomy = new KvStateMachine(new MemoryStorage(), 3, 3, 60_000, 1 << 20);
      List<KvStateMachine> all = List.of(plain, tiny, roomy);
      List<Heard> heard = new ArrayList<>();
      for (KvStateMachine sm : all) {
        sm.load();
        Heard h = new Heard();
        sm.changeListener(h);
        heard.add(h);
      }
      int at = 0;
      while (at < entries.size()) {
        int n = 1 + random.nextInt(Math.min(12, entries.size() - at));
        List<Entry> call = entries.subList(at, at + n);
        List<Response> expected = plain.apply(call, false);
        assertEquals(expected, tiny.apply(call, false), "seed " + seed + " run " + run + " at op " + (at + 1));
        assertEquals(expected, roomy.apply(call, false), "seed " + seed + " run " + run + " at op " + (at + 1));
        at += n;
        for (Entry e : call) { // what memory answers for the keys just used is what storage holds
          String key = keyOf(e);
          if (key == null) {
            continue;
          }
          Response stored = plain.read(getOf(key), 10);
          for (KvStateMachine sm : List.of(tiny, roomy)) {
            Response fromMemory = sm.readFromMemory(getOf(key));
            if (fromMemory != null) {
              assertEquals(stored, fromMemory, "seed " + seed + " run " + run + " key " + key);
            }
          }
        }
        if (random.nextInt(20) == 0) {
          tiny.load(); // a reload keeps nothing stale
        }
      }
      assertEquals(plain.appliedState(), tiny.appliedState(), "seed " + seed);
      assertEquals(plain.appliedState(), roomy.appliedState(), "seed " + seed);
      assertEquals(heard.get(0).lines, heard.get(2).lines, "seed " + seed);
      assertEquals(data(plainStorage), data(tinyStorage), "seed " + seed);
    }
  }

  private static List<KeyValue> data(Storage storage) {
    return storage.scan(new byte[0], new byte[0], Integer.MAX_VALUE);
  }

  @Test
  void shouldForgetWhatItKnewWhenAStateTransferReplacesTheState() {
    KvStateMachine sm = new KvStateMachine(new MemoryStorage(), 3, 3, 60_000, 1 << 20);
    sm.load();
    Heard heard = new Heard();
    sm.changeListener(heard);
    sm.apply(entriesFrom(1, put(0, 1, "a", "old"), put(0, 2, "gone", "x")), true);

    sm.beginInstall();
    sm.installData(List.of(KeyValue.newBuilder().setKey(ByteString.copyFromUtf8("a"))
        .setValue(ByteString.copyFromUtf8("installed")).setVersion(7).build()));
    sm.installSnapshot(9, 0, List.of());
    heard.lines.clear();
    sm.apply(entriesFrom(10, put(0, 3, "a", "new"), del(0, 4, "gone")), true);

    // The value before the write is the installed one, and "gone" is not in the installed state.
    assertEquals(List.of("10 a new prev installed@7", "applied 11"), heard.lines);
  }
}
