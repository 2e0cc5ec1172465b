package io.choir.checker;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.BitSet;
import java.util.Comparator;
import java.util.HashMap;
import java.util.Iterator;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.function.LongSupplier;

/**
 * KeySearch is the linearizability search for the operations of one key: the algorithm of Wing and Gong
 * (1993) with the memoization of Lowe (2017, "Testing for linearizability"), laid out as Porcupine's
 * checker.go does it. The history becomes a doubly linked list of call and return entries in real-time
 * order; the search repeatedly "lifts" (linearizes) a call entry that precedes the first remaining return,
 * pushes it on a stack and restarts from the head, and backtracks when it reaches a return entry whose
 * operation could not be linearized. A (linearized set, state) configuration that failed is never
 * entered again, nor is one that only adds open operations to a failed one (see {@link #knownToFail}).
 *
 * <p>Info operations get a return entry after every real one, so they may be linearized anywhere after
 * their invocation; since an operation linearized after every completed one cannot be observed, "it never
 * happened" is the same as leaving it unlinearized, and the search succeeds as soon as every ok operation
 * is linearized (the open ones need not be).
 *
 * <p>The loop state lives in fields so that a search that runs out of its time slice can be resumed
 * later; nothing here reads a clock except through the supplier it is given.
 */
final class KeySearch<S> {
  private static final int NIL = -1;
  private static final int HEAD = 0;
  private static final int MAX_REPORTED_STATES = 8;

  enum Status {
    VALID,
    INVALID,
    OUT_OF_TIME,
    OUT_OF_STATES
  }

  private final String key;
  private final Model<S> model;
  private final List<Invocation> all;
  private final Invocation[] ops;
  private final Operation[] stepOps;
  private final boolean[] open;
  private final int n;
  private final int okCount;
  // node 0 is the head; node 1 + i is op i's call entry; node 1 + n + i is its return entry
  private final int[] next;
  private final int[] prev;
  private final BitSet okLinearizedSet;
  private final BitSet openLinearizedSet;
  private final Map<ConfigKey, List<BitSet>> failed = new HashMap<>();
  private final ConfigKey probe = new ConfigKey();
  private long failedCount;
  private long entered;
  private final int[] stackOp;
  private final Object[] stackState;
  private int depth;
  private S state;
  private int entry;
  private int okLinearized;
  private long iterations;
  private Status finished;

  private int bestEnd = -1;
  private int bestOp = -1;
  private final Set<S> bestStates = new LinkedHashSet<>();
  private int[] bestPrefix = new int[0];

  KeySearch(String key, Model<S> model, List<Invocation> invocations) {
    this.key = key;
    this.model = model;
    this.all = invocations;
    List<Invocation> searched = new ArrayList<>();
    for (Invocation inv : invocations) {
      if (inv.outcome() == Outcome.FAIL) {
        continue; // definitely did not happen
      }
      if (inv.isOpen() && model.isReadOnly(inv.op())) {
        continue; // an unknown read constrains nothing
      }
      searched.add(inv);
    }
    this.n = searched.size();
    this.ops = searched.toArray(new Invocation[0]);
    this.stepOps = new Operation[n];
    this.open = new boolean[n];
    int ok = 0;
    for (int i = 0; i < n; i++) {
      stepOps[i] = ops[i].op();
      open[i] = ops[i].isOpen();
      if (!open[i]) {
        ok++;
      }
    }
    this.okCount = ok;
    this.next = new int[2 * n + 1];
    this.prev = new int[2 * n + 1];
    Integer[] order = new Integer[2 * n];
    for (int i = 0; i < 2 * n; i++) {
      order[i] = i + 1;
    }
    Arrays.sort(order, Comparator.comparingLong(this::position));
    int last = HEAD;
    prev[HEAD] = NIL;
    for (int node : order) {
      next[last] = node;
      prev[node] = last;
      last = node;
    }
    next[last] = NIL;
    this.okLinearizedSet = new BitSet(n);
    this.openLinearizedSet = new BitSet(n);
    this.stackOp = new int[n];
    this.stackState = new Object[n];
    this.state = model.initialState();
    this.entry = next[HEAD];
  }

  /** position orders entries: invocations and completions by event index, open returns last. */
  private long position(int node) {
    if (node <= n) {
      return ops[node - 1].invokeIndex();
    }
    int id = node - 1 - n;
    return open[id] ? (long) Integer.MAX_VALUE + id : ops[id].completeIndex();
  }

  /**
   * run continues the search until it decides, {@code clock} passes {@code deadline} (read every
   * {@code clockInterval} iterations) or the table of failed configurations outgrows {@code maxStates}.
   */
  @SuppressWarnings("unchecked")
  Status run(long deadline, LongSupplier clock, int clockInterval, long maxStates) {
    if (finished != null) {
      return finished;
    }
    while (true) {
      if (okLinearized == okCount) {
        return finished = Status.VALID;
      }
      if (++iterations % clockInterval == 0) {
        if (failedCount > maxStates) {
          return Status.OUT_OF_STATES;
        }
        if (clock.getAsLong() - deadline >= 0) {
          return Status.OUT_OF_TIME;
        }
      }
      if (entry <= n) {
        int id = entry - 1;
        Optional<S> after = model.step(state, stepOps[id]);
        if (after.isPresent()) {
          S s = after.get();
          BitSet set = open[id] ? openLinearizedSet : okLinearizedSet;
          set.set(id);
          if (!knownToFail(s)) {
            entered++;
            stackOp[depth] = id;
            stackState[depth] = state;
            depth++;
            state = s;
            lift(entry);
            if (!open[id]) {
              okLinearized++;
            }
            entry = next[HEAD];
            continue;
          }
          set.clear(id);
        }
        entry = next[entry];
      } else {
        noteStuck(entry - 1 - n);
        if (depth == 0) {
          return finished = Status.INVALID;
        }
        recordFailure();
        depth--;
        int id = stackOp[depth];
        state = (S) stackState[depth];
        stackState[depth] = null;
        (open[id] ? openLinearizedSet : okLinearizedSet).clear(id);
        int call = id + 1;
        unlift(call);
        if (!open[id]) {
          okLinearized--;
        }
        entry = next[call];
      }
    }
  }

  /**
   * knownToFail tells whether the configuration (current linearized sets, {@code s}) cannot lead to a
   * linearization because a configuration with the same ok operations and state, and a subset of its
   * open operations, already failed. This is Lowe's memoization, strengthened for open operations: an
   * open operation not yet linearized can always be left out, so fewer linearized open operations means
   * at least as many ways to finish. Configurations on the current path are never in the table (they
   * have not failed yet), and an identical configuration cannot be reached twice on one path.
   */
  private boolean knownToFail(S s) {
    List<BitSet> openSets = failed.get(probe.set(okLinearizedSet, s));
    if (openSets == null) {
      return false;
    }
    for (BitSet f : openSets) {
      if (isSubset(f, openLinearizedSet)) {
        return true;
      }
    }
    return false;
  }

  /** recordFailure remembers the configuration on top of the stack: all its continuations failed. */
  private void recordFailure() {
    List<BitSet> openSets = failed.get(probe.set(okLinearizedSet, state));
    if (openSets == null) {
      openSets = new ArrayList<>(1);
      failed.put(new ConfigKey().set((BitSet) okLinearizedSet.clone(), state), openSets);
    } else {
      // a failed set makes its supersets redundant
      for (Iterator<BitSet> it = openSets.iterator(); it.hasNext(); ) {
        if (isSubset(openLinearizedSet, it.next())) {
          it.remove();
          failedCount--;
        }
      }
    }
    openSets.add((BitSet) openLinearizedSet.clone());
    failedCount++;
  }

  private static boolean isSubset(BitSet a, BitSet b) {
    for (int i = a.nextSetBit(0); i >= 0; i = a.nextSetBit(i + 1)) {
      if (!b.get(i)) {
        return false;
      }
    }
    return true;
  }

  private void lift(int call) {
    next[prev[call]] = next[call];
    prev[next[call]] = prev[call]; // a call is always followed by at least its return
    int ret = call + n;
    next[prev[ret]] = next[ret];
    if (next[ret] != NIL) {
      prev[next[ret]] = prev[ret];
    }
  }

  private void unlift(int call) {
    int ret = call + n;
    next[prev[ret]] = ret;
    if (next[ret] != NIL) {
      prev[next[ret]] = ret;
    }
    next[prev[call]] = call;
    prev[next[call]] = call;
  }

  /**
   * noteStuck records a configuration that cannot get past op {@code id}'s completion. The latest such
   * completion over the whole search is where the history stops being linearizable.
   */
  private void noteStuck(int id) {
    int end = ops[id].completeIndex();
    if (end > bestEnd) {
      bestEnd = end;
      bestOp = id;
      bestStates.clear();
      bestStates.add(state);
      bestPrefix = Arrays.copyOf(stackOp, depth);
    } else if (end == bestEnd && bestStates.size() < MAX_REPORTED_STATES) {
      bestStates.add(state);
    }
  }

  /** exploredStates counts the configurations the search entered. */
  long exploredStates() {
    return entered;
  }

  long iterations() {
    return iterations;
  }

  /** anomaly explains an INVALID search; only meaningful once {@link #run} returned INVALID. */
  Anomaly anomaly() {
    Invocation op = ops[bestOp];
    List<Invocation> concurrent = new ArrayList<>();
    for (Invocation other : all) {
      if (other.id() != op.id() && other.overlaps(op)) {
        concurrent.add(other);
      }
    }
    List<String> states = new ArrayList<>();
    for (S s : bestStates) {
      states.add(model.describeState(s));
    }
    List<Invocation> prefix = new ArrayList<>(bestPrefix.length);
    for (int id : bestPrefix) {
      prefix.add(ops[id]);
    }
    return new Anomaly(key, op, concurrent, states, prefix);
  }

  /**
   * ConfigKey is the ok part of a configuration: the set of linearized ok operations and the state.
   * One mutable instance probes the table without copying the set; stored keys own a copy.
   */
  private static final class ConfigKey {
    private BitSet okSet;
    private Object state;
    private int hash;

    ConfigKey set(BitSet okSet, Object state) {
      this.okSet = okSet;
      this.state = state;
      this.hash = okSet.hashCode() * 31 + state.hashCode();
      return this;
    }

    @Override
    public int hashCode() {
      return hash;
    }

    @Override
    public boolean equals(Object o) {
      return o instanceof ConfigKey k && hash == k.hash && okSet.equals(k.okSet) && state.equals(k.state);
    }
  }
}
