package io.choir.server.replica;

import io.choir.proto.Entry;
import io.choir.server.core.Event;
import io.choir.server.storage.LogStore;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.function.Consumer;

/**
 * LogLane is the log lane's logic, stepped one unit at a time by its driver (a thread in the server,
 * an actor in the simulator). The driver hands it what waited in the lane's inbox ({@link #take});
 * the lane then works it off in order:
 *
 * <ul>
 *   <li>consecutive Persist tasks of one log epoch, up to maxBatchEntries entries, become ONE log
 *       write (WRITE), then one fsync (SYNC, unless fsync is off), then one Event.Persisted (REPORT):
 *       group commit, DESIGN.md "Normal case" step 3. Everything that queued while the previous fsync
 *       ran is taken at once, so batches grow with load by themselves.
 *   <li>Run tasks (truncations, the last normal view, an install's truncation) run in their place.
 * </ul>
 *
 * <p>The write and its fsync are separate units so that the simulator can put the apply lane's writes
 * and a crash between them, as the real threads allow. With fsync off (durability buffered, or the
 * test-only ack-before-fsync) the write is reported without a sync. With combinedSync, the server's
 * choice when it measures faster, WRITE is one synced write and there is no SYNC unit.
 */
public final class LogLane {
  private final LogStore storage;
  private final boolean fsync;
  private final boolean combinedSync;
  private final int maxBatchEntries;
  private final Consumer<Event> events;
  private final ArrayDeque<StorageLanes.Task> taken = new ArrayDeque<>();
  /** The group written and not yet reported, or null. */
  private List<Entry> written;
  private long writtenEpoch;
  private boolean synced;
  private volatile long fsyncs;

  /**
   * @param fsync log writes are made durable before they are reported
   * @param combinedSync the write and its fsync are one synced write (no SYNC unit)
   * @param events where Event.Persisted goes (the replica loop's queue)
   */
  public LogLane(LogStore storage, boolean fsync, boolean combinedSync, int maxBatchEntries,
      Consumer<Event> events) {
    if (maxBatchEntries < 1) {
      throw new IllegalArgumentException("maxBatchEntries must be at least 1: " + maxBatchEntries);
    }
    this.storage = storage;
    this.fsync = fsync;
    this.combinedSync = combinedSync;
    this.maxBatchEntries = maxBatchEntries;
    this.events = events;
  }

  /** Takes what waited in the inbox (in order); the lane works it off before it takes more. */
  public void take(Collection<StorageLanes.Task> tasks) {
    taken.addAll(tasks);
  }

  /** True while taken work remains (then the driver steps rather than takes). */
  public boolean hasWork() {
    return written != null || !taken.isEmpty();
  }

  /** The unit {@link #step} does next. */
  public StorageLanes.Unit next() {
    if (written != null) {
      return synced || !fsync ? StorageLanes.Unit.REPORT : StorageLanes.Unit.SYNC;
    }
    StorageLanes.Task t = taken.peek();
    if (t == null) {
      return StorageLanes.Unit.IDLE;
    }
    return t instanceof StorageLanes.Persist ? StorageLanes.Unit.WRITE : StorageLanes.Unit.RUN;
  }

  /** Does the next unit of work (nothing when IDLE). */
  public void step() {
    switch (next()) {
      case WRITE -> write();
      case SYNC -> {
        storage.sync();
        synced = true;
        fsyncs++;
      }
      case REPORT -> {
        long last = written.get(written.size() - 1).getOp();
        written = null;
        events.accept(new Event.Persisted(last, writtenEpoch));
      }
      case RUN -> ((StorageLanes.Run) taken.poll()).action().run();
      default -> { }
    }
  }

  private void write() {
    StorageLanes.Persist first = (StorageLanes.Persist) taken.poll();
    List<Entry> group = new ArrayList<>(first.entries());
    while (taken.peek() instanceof StorageLanes.Persist p && p.epoch() == first.epoch()
        && group.size() + p.entries().size() <= maxBatchEntries) {
      group.addAll(p.entries());
      taken.poll();
    }
    boolean syncNow = fsync && combinedSync;
    storage.appendLog(group, syncNow);
    written = group;
    writtenEpoch = first.epoch();
    synced = syncNow;
    if (syncNow) {
      fsyncs++;
    }
  }

  /** Fsyncs done so far (any thread). */
  public long fsyncs() {
    return fsyncs;
  }
}
