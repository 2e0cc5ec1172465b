package io.choir.server.replica;

import io.choir.proto.Entry;
import io.choir.proto.Response;
import io.choir.server.core.Event;
import io.choir.server.statemachine.KvStateMachine;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.function.Consumer;

/**
 * ApplyLane is the apply lane's logic, stepped one unit at a time by its driver: consecutive Apply
 * tasks, up to maxBatchEntries entries, become one {@link KvStateMachine#apply} (one WriteBatch,
 * unsynced: after a crash the replica re-applies the log above its applied number) and one
 * Event.Applied; Run tasks (the steps of a state-transfer install) run in their place, in order with
 * the applies.
 *
 * <p>Applying never waits for an fsync of the log lane: the core asks to apply only entries this
 * replica has persisted, so an apply's WAL record always follows the log write of its entries (a power
 * loss keeps a prefix of the WAL, hence never an applied op without its log entry; hole 2f).
 */
public final class ApplyLane {
  private final KvStateMachine stateMachine;
  private final int maxBatchEntries;
  private final Consumer<Event> events;
  private final ArrayDeque<StorageLanes.Task> taken = new ArrayDeque<>();

  public ApplyLane(KvStateMachine stateMachine, int maxBatchEntries, Consumer<Event> events) {
    if (maxBatchEntries < 1) {
      throw new IllegalArgumentException("maxBatchEntries must be at least 1: " + maxBatchEntries);
    }
    this.stateMachine = stateMachine;
    this.maxBatchEntries = maxBatchEntries;
    this.events = events;
  }

  /** Takes what waited in the inbox (in order); the lane works it off before it takes more. */
  public void take(Collection<StorageLanes.Task> tasks) {
    taken.addAll(tasks);
  }

  public boolean hasWork() {
    return !taken.isEmpty();
  }

  /** The unit {@link #step} does next: APPLY, RUN or IDLE. */
  public StorageLanes.Unit next() {
    StorageLanes.Task t = taken.peek();
    if (t == null) {
      return StorageLanes.Unit.IDLE;
    }
    return t instanceof StorageLanes.Apply ? StorageLanes.Unit.APPLY : StorageLanes.Unit.RUN;
  }

  /** Does the next unit of work (nothing when IDLE). */
  public void step() {
    switch (next()) {
      case APPLY -> apply();
      case RUN -> ((StorageLanes.Run) taken.poll()).action().run();
      default -> { }
    }
  }

  private void apply() {
    List<Entry> group = new ArrayList<>(((StorageLanes.Apply) taken.poll()).entries());
    while (taken.peek() instanceof StorageLanes.Apply a && group.size() + a.entries().size() <= maxBatchEntries) {
      group.addAll(a.entries());
      taken.poll();
    }
    List<Response> replies = stateMachine.apply(group, false);
    events.accept(new Event.Applied(group.get(0).getOp(), group.get(group.size() - 1).getOp(), replies,
        stateMachine.checksum()));
  }
}
