package io.choir.server.replica;

import io.choir.proto.Entry;
import io.choir.server.core.Event;
import io.choir.server.storage.Storage;
import java.util.List;
import java.util.function.Consumer;

/**
 * StorageLanes is the storage stage's front: it turns the executor's storage effects into tasks for
 * its two lanes, the log lane ({@link LogLane}: log appends and their fsync, log truncations, the last
 * normal view) and the apply lane ({@link ApplyLane}: applies and state-transfer installs). Each lane
 * works off its tasks in order, one unit of work at a time; the lanes run concurrently, so their
 * writes interleave in the storage's one WAL in any order, except where a lane waits for the other
 * (an install's log truncation runs on the log lane: {@link ApplyLaneStorage}).
 *
 * <p>Where the tasks wait is the {@link Inbox}: in the server a bounded blocking queue drained by the
 * lane's thread ({@link StorageStage}), in the simulator a queue drained by the lane's actor at seeded
 * random moments.
 */
public final class StorageLanes implements EffectExecutor.StoragePort {
  /** One piece of storage work queued on a lane. */
  public sealed interface Task permits Persist, Apply, Run {}

  /** Log lane: entries to append (op order) for the core's log epoch. */
  public record Persist(List<Entry> entries, long epoch) implements Task {}

  /** Apply lane: committed entries to apply (op order). */
  public record Apply(List<Entry> entries) implements Task {}

  /** Either lane: an action run in order with the lane's other tasks; what names it in traces. */
  public record Run(String what, Runnable action) implements Task {}

  /** Where a lane's tasks wait until the lane takes them; put may block when it is bounded. */
  public interface Inbox {
    void put(Task task);
  }

  /** The unit of work a lane does next (the simulator gives each kind its own duration). */
  public enum Unit {
    /** Nothing taken: the lane's next move is to take what waits in its inbox. */
    IDLE,
    /** Append one group of entries to the log (one atomic write). */
    WRITE,
    /** Fsync the WAL: everything written so far becomes durable. */
    SYNC,
    /** Report the group written (and synced, per the durability) as Event.Persisted. */
    REPORT,
    /** Apply one group of committed entries and report Event.Applied. */
    APPLY,
    /** Run one action (a truncation, the last normal view, a step of an install). */
    RUN
  }

  private final Storage storage;
  private final boolean fsync;
  private final Inbox logInbox;
  private final Inbox applyInbox;
  private final Consumer<Event> events;

  /**
   * StorageLanes over storage; fsync tells whether log truncations above an op are synced writes (the
   * log lane's appends sync by their own SYNC unit); events is the replica loop's queue (for
   * Event.LastNormalViewPersisted).
   */
  public StorageLanes(Storage storage, boolean fsync, Inbox logInbox, Inbox applyInbox, Consumer<Event> events) {
    this.storage = storage;
    this.fsync = fsync;
    this.logInbox = logInbox;
    this.applyInbox = applyInbox;
    this.events = events;
  }

  @Override
  public void truncateLogAfter(long op) {
    logInbox.put(new Run("truncate the log after " + op, () -> storage.truncateLogAfter(op, fsync)));
  }

  @Override
  public void persist(List<Entry> entries, long epoch) {
    logInbox.put(new Persist(List.copyOf(entries), epoch));
  }

  /** After the log writes it vouches for; the core acknowledges in that view only once it is durable. */
  @Override
  public void storeLastNormalView(long lastNormalView, boolean caughtUp) {
    logInbox.put(new Run("store the last normal view " + lastNormalView, () -> {
      ReplicaMeta.storeLastNormalView(storage, lastNormalView, caughtUp);
      events.accept(new Event.LastNormalViewPersisted(lastNormalView));
    }));
  }

  @Override
  public void apply(List<Entry> entries) {
    applyInbox.put(new Apply(List.copyOf(entries)));
  }

  @Override
  public void truncateLogBefore(long op) {
    logInbox.put(new Run("truncate the log before " + op, () -> storage.truncateLogBefore(op, false)));
  }

  /** Runs action on the apply lane, in order with the applies (the steps of a state-transfer install). */
  public void runApply(String what, Runnable action) {
    applyInbox.put(new Run(what, action));
  }

  /** Runs action on the log lane, after every log task queued before it. */
  public void runLog(String what, Runnable action) {
    logInbox.put(new Run(what, action));
  }
}
