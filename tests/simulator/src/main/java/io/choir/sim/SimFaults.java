package io.choir.sim;

import io.choir.server.core.ReplicaCore;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashSet;
import java.util.List;
import java.util.Random;
import java.util.Set;
import java.util.SplittableRandom;

/**
 * SimFaults injects one fault every fault period, healed after a while: a backup isolated, multicast
 * to a backup cut, a backup's repair path cut, a crash of a backup or of the primary (kill -9 or power
 * loss, the seed chooses) restarted later, the primary cut off from the backups, one-way cuts, a
 * majority/minority split, a flapping primary, the new primary crashed in the middle of a view change,
 * the clients cut off from the primary (or the primary cut off from everyone), or the primary process
 * stopped (SIGSTOP) and resumed. At most one voter is down (or recovering) at a time, so f = 1
 * always holds. Other plans ({@link SimConfig.FaultPlan}) inject only the faults of one hole.
 *
 * <p>Who is hit follows the membership ({@link SimEpochs}, DESIGN.md "Membership"): the primary is the
 * primary of the highest view; the others are the latest epoch's voters and learners and the joiners
 * not added yet (a removed replica is hit no more); a split divides the current voters into a majority
 * and a minority. The one-down rule is about the current voters: a voter crashes only while every
 * other voter is up and caught up, and only when there are at least three (f >= 1); a learner or a
 * joiner may crash any time. In a run whose membership never changes this is the cluster's replicas in
 * id order, as it always was (the seeds' runs are unchanged).
 */
final class SimFaults {
  static final long MS = 1_000_000L;

  private final Simulation sim;
  private final SimConfig cfg;
  private final SplittableRandom random;
  private final SimNetwork net;
  boolean on;

  SimFaults(Simulation sim, SimConfig cfg, SplittableRandom random, SimNetwork net) {
    this.sim = sim;
    this.cfg = cfg;
    this.random = random;
    this.net = net;
  }

  void start() {
    on = cfg.faults();
    if (on) {
      sim.clock.after(cfg.faultPeriodNs() / 3, this::inject);
    }
  }

  /**
   * Current voters down, recovering or still catching up after a restart (their log is not complete
   * yet): at most one at a time may lack what it acknowledged (f >= 1; under buffered durability a power
   * loss of a second replica while the first catches up loses committed writes, VR's assumption).
   */
  int votersDown() {
    int down = 0;
    for (int id : sim.epochs().voters()) {
      SimReplica n = sim.node(id);
      if (!n.up || n.core.mode() == ReplicaCore.Mode.RECOVERING || n.core.mustCatchUp()
          || n.core.role().equals("catching-up")) {
        down++;
      }
    }
    return down;
  }

  /**
   * True when node may crash now: it is up, and it is no current voter, or it is one of at least three
   * and no voter is down ({@link #votersDown}).
   */
  boolean mayCrash(SimReplica node) {
    List<Integer> voters = sim.epochs().voters();
    if (!node.up) {
      return false;
    }
    return !voters.contains(node.id) || voters.size() >= 3 && votersDown() == 0;
  }

  /**
   * Whom a fault may hit besides the primary, in id order: the latest membership's voters and learners
   * and the joiners not added yet; not the replicas removed or crashed for good.
   */
  private List<Integer> others(int primaryId) {
    List<Integer> ids = new ArrayList<>();
    for (int id = 1; id <= cfg.replicas(); id++) {
      if (id != primaryId && !sim.epochs().removed(id) && !sim.node(id).gone) {
        ids.add(id);
      }
    }
    return ids;
  }

  /** Stops node by kill -9 or by a power loss, as the seed chooses, and restarts it after downForNs. */
  private void crash(SimReplica node, long downForNs) {
    boolean powerLoss = random.nextBoolean();
    sim.bump(powerLoss ? "crash_power_loss" : "crash_process");
    sim.crash(node, powerLoss);
    sim.clock.after(downForNs, () -> sim.restart(node));
  }

  private void inject() {
    if (!on) {
      return;
    }
    if (cfg.faultPlan() == SimConfig.FaultPlan.BACKUPS_ONLY) {
      injectBackupFault();
      return;
    }
    if (cfg.faultPlan() == SimConfig.FaultPlan.STEP_DOWNS) {
      injectStepDown();
      return;
    }
    sim.healAll();
    SimReplica primary = sim.currentPrimary();
    List<Integer> voters = sim.epochs().voters();
    int primaryId = primary == null ? voters.get(random.nextInt(voters.size())) : primary.id;
    List<Integer> backups = others(primaryId);
    if (backups.isEmpty()) {
      sim.clock.after(cfg.faultPeriodNs(), this::inject);
      return;
    }
    int victim = backups.get(random.nextInt(backups.size()));
    int kind = random.nextInt(14);
    switch (kind) {
      case 0 -> {
        net.isolate(victim);
        sim.bump("fault_isolate_backup");
      }
      case 1 -> {
        net.multicastCut[victim] = true;
        sim.bump("fault_cut_multicast");
      }
      case 2 -> {
        net.repairCut[victim] = true;
        sim.bump("fault_cut_repair");
      }
      case 3, 4 -> {
        // a crash of a backup (or learner, or joiner) or of the primary; one voter down at a time
        SimReplica node = sim.node(kind == 3 ? victim : primaryId);
        if (mayCrash(node)) {
          sim.bump(kind == 4 ? "fault_crash_primary"
              : voters.contains(victim) ? "fault_crash_backup" : "fault_crash_non_voter");
          crash(node, 50 * MS + random.nextLong(1500 * MS));
        }
      }
      case 5 -> {
        // The primary cut off from every backup (clients still reach it): the others elect a new one.
        net.isolate(primaryId);
        sim.bump("fault_isolate_primary");
      }
      case 6 -> {
        // one-way cut: the victim hears nothing from the primary, but can still talk to it
        net.cut[primaryId][victim] = true;
        sim.bump("fault_one_way");
      }
      case 7 -> {
        // the primary hears nothing from anyone, but is still heard
        for (int id = 1; id <= cfg.replicas(); id++) {
          net.cut[id][primaryId] = true;
        }
        sim.bump("fault_one_way_primary_deaf");
      }
      case 8 -> {
        // a majority/minority split of the voters (the primary on a random side); the others on either
        List<Integer> ids = new ArrayList<>(voters);
        Collections.shuffle(ids, new Random(random.nextLong()));
        Set<Integer> minority = new HashSet<>(ids.subList(0, ids.size() / 2));
        for (int id : backups) {
          if (!voters.contains(id) && random.nextBoolean()) {
            minority.add(id);
          }
        }
        for (int a = 1; a <= cfg.replicas(); a++) {
          for (int b = 1; b <= cfg.replicas(); b++) {
            if (minority.contains(a) != minority.contains(b)) {
              net.cut[a][b] = true;
            }
          }
        }
        sim.bump("fault_split");
      }
      case 9 -> {
        // flapping: the primary's links go down and up every few ms for a while
        sim.bump("fault_flapping");
        int target = primaryId;
        for (int k = 0; k < 10; k++) {
          boolean down = k % 2 == 0;
          sim.clock.after(k * (20 * MS + random.nextLong(60 * MS)), () -> {
            if (on) {
              for (int id = 1; id <= cfg.replicas(); id++) {
                if (id != target) {
                  net.cut[id][target] = down;
                  net.cut[target][id] = down;
                }
              }
            }
          });
        }
      }
      case 11 -> {
        // The clients cannot reach the primary (a firewall between them), which still leads its
        // backups: what the clients send waits, connects time out, and their calls must move on.
        net.clientCut[primaryId] = true;
        sim.bump("fault_clients_cut_from_primary");
      }
      case 12 -> {
        // The primary cut off from everyone, clients included (as good as paused): the backups elect a
        // new primary, and the clients must leave the silent one by their attempt timeout.
        net.isolate(primaryId);
        net.clientCut[primaryId] = true;
        sim.bump("fault_silent_primary");
      }
      case 13 -> {
        // The primary process stopped (SIGSTOP), its sockets open: nothing answers, nothing breaks. The
        // backups elect a new primary, the clients leave it by their attempt timeout; when it resumes it
        // works off what waited for it, in its old view.
        SimReplica p = sim.node(primaryId);
        if (p.up) {
          p.pause(true);
          sim.bump("fault_pause_primary");
        }
      }
      default -> {
        // crash whoever is the new primary while a view change may be running
        if (votersDown() == 0) {
          net.isolate(primaryId);
          long when = 500 * MS + random.nextLong(700 * MS);
          sim.clock.after(when, () -> {
            SimReplica p = sim.currentPrimary();
            if (on && p != null && p.id != primaryId && mayCrash(p)) {
              sim.bump("fault_crash_new_primary");
              crash(p, 100 * MS + random.nextLong(900 * MS));
            }
          });
          sim.bump("fault_isolate_then_crash_new_primary");
        }
      }
    }
    // Mostly short faults, and some longer than the election timeout.
    long duration = random.nextInt(3) == 0
        ? 600 * MS + random.nextLong(1500 * MS)
        : cfg.faultPeriodNs() / 2 + random.nextLong(cfg.faultPeriodNs());
    sim.clock.after(duration, () -> {
      net.healLinks();
      for (int id = 1; id <= cfg.replicas(); id++) {
        sim.node(id).pause(false);
      }
    });
    sim.clock.after(duration + cfg.faultPeriodNs(), this::inject);
  }

  /**
   * One fault of the hole-2d family: a backup of a healthy primary cut off both ways, or one way (it
   * hears nobody, or nobody hears it), for 3 to 8 election timeouts, or crashed (kill -9 or power loss)
   * and restarted after up to 8 election timeouts; then a quiet period before the next. None of them
   * may cause a view change: the primary is alive and reaches a majority all along.
   */
  private void injectBackupFault() {
    sim.healAll();
    SimReplica primary = sim.currentPrimary();
    long electionNs = sim.node(1).config.quorumTimeoutNs;
    long next = cfg.faultPeriodNs() + random.nextLong(cfg.faultPeriodNs());
    if (primary != null && votersDown() == 0 && !others(primary.id).isEmpty()) {
      List<Integer> backups = others(primary.id);
      int victim = backups.get(random.nextInt(backups.size()));
      long duration = 3 * electionNs + random.nextLong(5 * electionNs);
      switch (random.nextInt(4)) {
        case 0 -> {
          net.isolate(victim);
          sim.bump("2d_isolations");
          sim.bump("2d_isolations_both_ways");
        }
        case 1 -> {
          for (int id = 1; id <= cfg.replicas(); id++) {
            net.cut[id][victim] = true; // it hears nobody: it times out and asks for a new view
          }
          sim.bump("2d_isolations");
          sim.bump("2d_isolations_deaf");
        }
        case 2 -> {
          for (int id = 1; id <= cfg.replicas(); id++) {
            net.cut[victim][id] = true; // nobody hears it
          }
          sim.bump("2d_isolations");
          sim.bump("2d_isolations_mute");
        }
        default -> {
          boolean powerLoss = random.nextBoolean();
          sim.bump(powerLoss ? "2d_restarts_power_loss" : "2d_restarts_process_crash");
          sim.bump("2d_restarts");
          SimReplica node = sim.node(victim);
          if (mayCrash(node)) {
            sim.crash(node, powerLoss);
            sim.clock.after(duration, () -> sim.restart(node));
          }
          duration = 0;
        }
      }
      if (duration > 0) {
        sim.clock.after(duration, net::healLinks);
      }
      next += duration;
    }
    sim.clock.after(next, this::inject);
  }

  /**
   * One fault of {@link SimConfig.FaultPlan#STEP_DOWNS}: the primary hears nobody (everyone still hears
   * it) for 2 to 3.2 election timeouts, about when the backups have gone through the next view change:
   * the writes it logged before it went quiet reached the backups and commit in the next view, and the
   * primary, hearing again, steps down while they wait. Meanwhile, and for a while after, the clients
   * cannot reach the next view's primary (a firewall between them), so a call redirected there does
   * not get its answer before its deadline: what the step-down answer said decides what its failure
   * promises.
   */
  private void injectStepDown() {
    sim.healAll();
    SimReplica primary = sim.currentPrimary();
    long electionNs = sim.node(1).config.quorumTimeoutNs;
    long duration = 0;
    if (primary != null && votersDown() == 0) {
      for (int id = 1; id <= cfg.replicas(); id++) {
        net.cut[id][primary.id] = true;
      }
      int next = primary.core.membership().primaryOf(primary.core.view() + 1);
      net.clientCut[next] = true;
      sim.bump("fault_primary_deaf_until_view_change");
      duration = 2 * electionNs + random.nextLong(6 * electionNs / 5);
      sim.clock.after(duration, () -> {
        for (boolean[] row : net.cut) {
          Arrays.fill(row, false);
        }
      });
      duration += random.nextLong(2 * electionNs);
      sim.clock.after(duration, net::healLinks);
    }
    sim.clock.after(duration + cfg.faultPeriodNs() / 2 + random.nextLong(cfg.faultPeriodNs()), this::inject);
  }
}
