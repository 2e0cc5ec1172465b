package io.choir.checker;

import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.Random;

/**
 * RegisterSimulation produces histories of a linearizable register store under concurrency, so the
 * checker can be tested on large histories whose verdict is known. Every operation takes effect
 * atomically at a random moment between its invocation and its completion (or never, for some info
 * ones), exactly the behaviour linearizability allows, and the events of all keys are interleaved.
 * Written values are unique per key, which makes the corruptions the tests apply provably invalid.
 */
final class RegisterSimulation {

  /**
   * Config shapes a simulated run.
   *
   * @param keys number of keys
   * @param opsPerKey invocations per key
   * @param minProcesses fewest concurrent processes on a key
   * @param maxProcesses most concurrent processes on a key
   * @param infoRate chance that an operation ends with info (half before, half after taking effect)
   * @param failRate chance that a write is rejected without taking effect
   * @param valueRange 0 for unique written values (as in Jepsen), else values drawn from 1..valueRange,
   *     which makes the search harder because reads no longer identify their write
   */
  record Config(
      int keys, int opsPerKey, int minProcesses, int maxProcesses, double infoRate, double failRate, int valueRange) {

    /** Config with unique values. */
    Config(int keys, int opsPerKey, int minProcesses, int maxProcesses, double infoRate, double failRate) {
      this(keys, opsPerKey, minProcesses, maxProcesses, infoRate, failRate, 0);
    }
  }

  private RegisterSimulation() {}

  private static final class Slot {
    long process;
    Operation op;
    int phase; // 0 idle, 1 invoked, 2 took effect
    Long result;
    boolean succeeded;
  }

  private static final class KeySim {
    final String key;
    final Slot[] slots;
    Long value;
    long nextValue = 1;
    int invoked;

    KeySim(String key, int processes) {
      this.key = key;
      this.slots = new Slot[processes];
    }

    boolean done(int opsPerKey) {
      if (invoked < opsPerKey) {
        return false;
      }
      for (Slot s : slots) {
        if (s.phase != 0) {
          return false;
        }
      }
      return true;
    }
  }

  static History generate(Random rnd, Config c) {
    History.Builder b = History.builder();
    long nextProcess = 0;
    List<KeySim> active = new ArrayList<>();
    for (int k = 0; k < c.keys(); k++) {
      int procs = c.minProcesses() + rnd.nextInt(c.maxProcesses() - c.minProcesses() + 1);
      KeySim ks = new KeySim("k" + k, procs);
      for (int i = 0; i < procs; i++) {
        ks.slots[i] = new Slot();
        ks.slots[i].process = nextProcess++;
      }
      active.add(ks);
    }
    long time = 0;
    while (!active.isEmpty()) {
      int ki = rnd.nextInt(active.size());
      KeySim ks = active.get(ki);
      if (ks.done(c.opsPerKey())) {
        active.remove(ki);
        continue;
      }
      Slot s = ks.slots[rnd.nextInt(ks.slots.length)];
      time += 1 + rnd.nextInt(1000);
      switch (s.phase) {
        case 0 -> {
          if (ks.invoked < c.opsPerKey()) {
            s.op = randomOp(rnd, ks, s.process, c.valueRange());
            b.invoke(s.op, time);
            ks.invoked++;
            s.phase = 1;
          }
        }
        case 1 -> {
          double r = rnd.nextDouble();
          if (r < c.infoRate() / 2) {
            b.info(s.process, time); // lost before it took effect: it never will
            s.process = nextProcess++;
            s.phase = 0;
          } else if (r < c.infoRate() / 2 + c.failRate() && s.op.type() == OpType.WRITE) {
            b.fail(s.process, time);
            s.phase = 0;
          } else {
            takeEffect(ks, s);
            s.phase = 2;
          }
        }
        case 2 -> {
          if (rnd.nextDouble() < c.infoRate() / 2) {
            b.info(s.process, time); // took effect, but the client never learns it
            s.process = nextProcess++;
          } else if (s.op.type() == OpType.READ) {
            b.ok(s.process, s.result, time);
          } else if (s.succeeded) {
            b.ok(s.process, time);
          } else {
            b.fail(s.process, time);
          }
          s.phase = 0;
        }
        default -> throw new AssertionError(s.phase);
      }
    }
    return b.build();
  }

  private static Operation randomOp(Random rnd, KeySim ks, long process, int valueRange) {
    int r = rnd.nextInt(10);
    if (r < 5) {
      return Operation.read(process, ks.key);
    }
    if (valueRange > 0) {
      long v = 1 + rnd.nextInt(valueRange);
      if (r < 8) {
        return Operation.write(process, ks.key, v);
      }
      Long expected = rnd.nextInt(10) < 6 ? ks.value : Long.valueOf(1 + rnd.nextInt(valueRange));
      return Operation.cas(process, ks.key, expected, v);
    }
    if (r < 8) {
      return Operation.write(process, ks.key, ks.nextValue++);
    }
    double e = rnd.nextDouble();
    Long expected;
    if (e < 0.6 || ks.nextValue == 1) {
      expected = ks.value; // likely to succeed (unless someone else gets there first)
    } else if (e < 0.9) {
      expected = 1 + (long) rnd.nextInt((int) ks.nextValue - 1); // some earlier value
    } else {
      expected = null;
    }
    return Operation.cas(process, ks.key, expected, ks.nextValue++);
  }

  private static void takeEffect(KeySim ks, Slot s) {
    Operation op = s.op;
    switch (op.type()) {
      case READ -> s.result = ks.value;
      case WRITE -> {
        ks.value = op.value();
        s.succeeded = true;
      }
      case CAS -> {
        s.succeeded = Objects.equals(ks.value, op.expected());
        if (s.succeeded) {
          ks.value = op.newValue();
        }
      }
      default -> throw new AssertionError(op.type());
    }
  }
}
