package io.choir.jepsen;

import io.choir.client.CatchUpProgress;
import io.choir.client.ChoirClient;
import io.choir.client.ChoirTimeoutException;
import io.choir.client.LearnerNotCaughtUpException;
import io.choir.client.Member;
import io.choir.client.MemberChangeRefusedException;
import io.choir.client.MemberRole;
import io.choir.client.Membership;
import io.choir.client.ReplicaInfo;
import io.choir.client.ReplicaStatusResult;
import io.choir.client.VersionedValue;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * MembershipFaults are the membership faults of the catalogue ({@link Nemeses}, group {@code membership}).
 *
 * <p>{@code member-replace} replaces a voter that is not dead but cut off, the hard case: on start it
 * picks a target among the members (any, the primary too, with the step's random), cuts it off from all
 * others both ways with nftables (it stays alive and may still believe it is primary), and with 5 or more
 * nodes cuts off one more random member too, so that the change has to be made by a bare majority. Then,
 * on a thread of its own, it starts a fresh replica ({@link Cluster#startJoiner}: the next id and IP, its
 * own data disk, {@code join: true}; the cut-off nodes and it cannot hear each other either) and runs
 * {@code replaceMember(target, new)} through an admin client whose endpoints are the live members: the
 * new replica is added as a learner, catches up, and takes the target's place in one new epoch. On stop
 * it waits for the replacement (at most {@link #BUDGET} from the start), heals the cuts, and reads the
 * removed node's status after the heal: it must retire, not disrupt the new epoch. Its container is then
 * stopped. The stop detail (the history's nemesis result) says {@code replaced nX by nY: epoch ..., voters
 * ..., took ... ms; nX after the heal: ...}, or why not: refused (not executed), the learner did not
 * catch up, or the outcome is unknown; none of these ends the run.
 */
final class MembershipFaults {
  private static final Logger log = LoggerFactory.getLogger(MembershipFaults.class);

  /** CATCH_UP is how long the new replica has to catch up as a learner before the swap. */
  static final Duration CATCH_UP = Duration.ofSeconds(30);
  /** BUDGET is the longest a replacement may take from the nemesis' start, the container's start included. */
  static final Duration BUDGET = Duration.ofSeconds(60);
  /** RETIRE_WAIT is how long stop waits, after the heal, for the removed node to report itself retired. */
  static final Duration RETIRE_WAIT = Duration.ofSeconds(20);
  private static final Duration ADMIN_TIMEOUT = Duration.ofSeconds(5);
  private static final long POLL_MS = 200;

  private MembershipFaults() {}

  /** all are the membership faults in catalogue order. */
  static List<Nemesis> all() {
    return List.of(new MemberReplace("member-replace"));
  }

  /**
   * cut is the nodes {@code member-replace} cuts off from {@code members}: the target first (any member),
   * and with 5 or more members one more, so that a bare majority is left.
   */
  static List<String> cut(List<String> members, Random random) {
    List<String> out = new ArrayList<>();
    out.add(Targets.pick(members, random));
    if (members.size() >= 5) {
      out.add(Targets.pick(members.stream().filter(n -> !n.equals(out.get(0))).toList(), random));
    }
    return out;
  }

  private record MemberReplace(String name) implements Nemesis {
    @Override
    public Active start(Cluster cluster, Random random) {
      List<String> members = Targets.names(cluster);
      List<String> cut = cut(members, random);
      Map<String, Set<String>> grudge = Nft.Grudge.isolateEach(cut, members);
      try {
        grudge.forEach((node, deafTo) -> nft(cluster, cluster.node(node),
            Nft.ensureTable() + Nft.dropFrom(deafTo.stream().map(x -> cluster.node(x).ip()).toList())));
      } catch (RuntimeException e) {
        grudge.keySet().forEach(n -> healQuietly(cluster, cluster.node(n)));
        throw e;
      }
      Replacement r = new Replacement(cluster, cluster.node(cut.get(0)), cut.stream().map(cluster::node).toList());
      r.thread.start();
      String detail = "cut off " + String.join(",", cut) + " (" + Nft.Grudge.describe(grudge) + "); replacing "
          + cut.get(0) + " by a fresh replica through the other " + (members.size() - cut.size()) + " members";
      return new Active() {
        private String outcome = "stopped";

        @Override
        public List<String> nodes() {
          return cut;
        }

        @Override
        public String detail() {
          return detail;
        }

        @Override
        public void stop() throws InterruptedException {
          r.thread.join(Math.max(1, TimeUnit.NANOSECONDS.toMillis(r.deadline - System.nanoTime()) + 20_000));
          String result = r.result; // volatile: written last by the thread
          if (result == null) {
            result = "outcome unknown: the replacement was still running at the heal";
          }
          // every node of the grudge (the live members drop the cut-off ones too) and the newcomer
          List<Cluster.Node> healed = new ArrayList<>(grudge.keySet().stream().map(cluster::node).toList());
          r.joiner().ifPresent(healed::add);
          healed.forEach(n -> healQuietly(cluster, n));
          outcome = result + "; " + afterHeal(cluster, r);
        }

        @Override
        public String stopDetail() {
          return outcome;
        }
      };
    }
  }

  /** Replacement is one replacement's thread and what it found. */
  private static final class Replacement {
    final Cluster cluster;
    final Cluster.Node target;
    final List<Cluster.Node> cut;
    final long startNanos = System.nanoTime();
    final long deadline = startNanos + BUDGET.toNanos();
    final Thread thread;
    volatile Cluster.Node joiner;
    volatile boolean replaced;
    volatile String result;

    Replacement(Cluster cluster, Cluster.Node target, List<Cluster.Node> cut) {
      this.cluster = cluster;
      this.target = target;
      this.cut = cut;
      this.thread = new Thread(this::run, "nemesis-member-replace-" + target.name());
      this.thread.setDaemon(true);
    }

    Optional<Cluster.Node> joiner() {
      return Optional.ofNullable(joiner);
    }

    private void run() {
      List<String> live = cluster.nodes().stream().filter(n -> !cut.contains(n)).map(Cluster.Node::endpoint).toList();
      String r;
      try (ChoirClient admin = cluster.clientBuilder(live).requestTimeout(ADMIN_TIMEOUT)
          .connectTimeout(Duration.ofSeconds(1)).eventLoopThreads(1).build()) {
        r = replace(admin);
      } catch (Exception e) { // a container that would not start, an interrupt, ...: the run goes on
        log.atWarn().setMessage("member-replace failed").addKeyValue("target", target.name())
            .addKeyValue("error", e.toString()).log();
        r = "failed: " + e;
        Cluster.Node n = joiner;
        if (n != null && !replaced) {
          try {
            cluster.stop(n, Duration.ofSeconds(5)); // no member: not left running beside the cluster
            r += "; " + n.name() + " stopped";
          } catch (RuntimeException again) {
            r += "; stopping " + n.name() + ": " + again.getMessage();
          }
        }
      }
      result = r;
    }

    private String replace(ChoirClient admin) throws Exception {
      Membership before = members(admin);
      Cluster.Node n = cluster.startJoiner();
      joiner = n;
      // the cut-off nodes and the newcomer do not hear each other either
      for (Cluster.Node c : cut) {
        nft(cluster, c, Nft.ensureTable() + Nft.dropFrom(List.of(n.ip())));
      }
      nft(cluster, n, Nft.ensureTable() + Nft.dropFrom(cut.stream().map(Cluster.Node::ip).toList()));
      long[] caughtUpMs = {-1};
      String attempt;
      try {
        admin.membership().replaceMember(target.id(), n.id(), n.endpoint(), n.spec().peerAddress(), before.epoch(),
            CATCH_UP, (CatchUpProgress p) -> {
              if (p.caughtUp() && caughtUpMs[0] < 0) {
                caughtUpMs[0] = p.elapsedMs();
              }
            });
        attempt = "";
      } catch (MemberChangeRefusedException e) {
        attempt = retryWhileLearner(admin, n, e);
      } catch (LearnerNotCaughtUpException e) {
        attempt = "the learner " + n.name() + " was added but did not catch up in " + CATCH_UP.toSeconds()
            + " s (acked op " + e.ackedOp() + " of " + e.targetOp() + ")";
      } catch (ChoirTimeoutException e) {
        attempt = "outcome unknown (" + e.getMessage() + ")";
      }
      Membership after = members(admin); // what happened, whatever the answer said
      long tookMs = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - startNanos);
      boolean done = after.member(n.id()).map(m -> m.role() == MemberRole.VOTER).orElse(false)
          && after.member(target.id()).map(m -> m.role() != MemberRole.VOTER).orElse(true);
      String state = "epoch " + after.epoch() + ", voters " + ids(after.voters());
      if (done) {
        cluster.replaced(target, n);
        replaced = true;
        log.atInfo().setMessage("member-replace done").addKeyValue("removed", target.name())
            .addKeyValue("added", n.name()).addKeyValue("epoch", after.epoch()).addKeyValue("tookMs", tookMs).log();
        return "replaced " + target.name() + " by " + n.name() + ": " + state + " (epoch " + before.epoch()
            + " before), took " + tookMs + " ms" + (caughtUpMs[0] < 0 ? "" : " (learner caught up after "
            + caughtUpMs[0] + " ms of the catch-up wait)") + (attempt.isEmpty() ? "" : "; " + attempt);
      }
      // not replaced: a learner left behind would refuse every later change, so remove it
      String cleanup = "";
      if (after.member(n.id()).isPresent()) {
        try {
          admin.membership().removeMember(n.id(), 0);
          cleanup = "; learner " + n.name() + " removed";
        } catch (RuntimeException e) {
          cleanup = "; removing learner " + n.name() + ": " + e.getMessage();
        }
      }
      cluster.stop(n, Duration.ofSeconds(5));
      return "not replaced: " + (attempt.isEmpty() ? "the answer was ok, yet" : attempt + ";") + " " + state
          + ", took " + tookMs + " ms" + cleanup + "; " + n.name() + " stopped";
    }

    /**
     * retryWhileLearner: the swap was refused (not executed). When the newcomer is a learner by then, the
     * add went through and the swap itself was refused, often only for now (no acknowledgement heard
     * yet in a new epoch, a learner a few ops behind): ask again until the budget runs out.
     */
    private String retryWhileLearner(ChoirClient admin, Cluster.Node n, MemberChangeRefusedException first)
        throws InterruptedException {
      MemberChangeRefusedException last = first;
      int refusals = 1;
      while (System.nanoTime() < deadline) {
        Membership m = members(admin);
        if (m.member(n.id()).map(x -> x.role() != MemberRole.LEARNER).orElse(true)) {
          break; // not a learner: the add itself was refused, or something else happened
        }
        try {
          admin.membership().replaceMember(target.id(), n.id(), m.epoch());
          return "the swap was refused " + refusals + " time(s) first (last: " + last.reason() + ")";
        } catch (MemberChangeRefusedException e) {
          last = e;
          refusals++;
        } catch (ChoirTimeoutException e) {
          return "outcome unknown after " + refusals + " refusal(s) (" + e.getMessage() + ")";
        }
        TimeUnit.MILLISECONDS.sleep(POLL_MS); // a refusal is an answer: nothing to wait on but time
      }
      return "refused (not executed) " + refusals + " time(s): " + last.reason();
    }

    /** members reads the membership, retrying through view changes until the budget runs out. */
    private Membership members(ChoirClient admin) throws InterruptedException {
      RuntimeException last = null;
      do {
        try {
          return admin.membership().members();
        } catch (RuntimeException e) {
          last = e;
          TimeUnit.MILLISECONDS.sleep(POLL_MS);
        }
      } while (System.nanoTime() < deadline + TimeUnit.SECONDS.toNanos(10));
      throw new IllegalStateException("no membership from the live members: " + last, last);
    }
  }

  /**
   * afterHeal reads the removed node's status until it reports itself retired (or {@link #RETIRE_WAIT}
   * passes), says what it found, and stops its container; without a replacement it says the target's state.
   */
  private static String afterHeal(Cluster cluster, Replacement r) throws InterruptedException {
    long deadline = System.nanoTime() + RETIRE_WAIT.toNanos();
    ReplicaStatusResult s;
    while (true) {
      s = cluster.status(r.target);
      boolean retired = s.info() != null && s.info().memberRole() == MemberRole.RETIRED;
      if (!r.replaced || retired || System.nanoTime() >= deadline) {
        break;
      }
      TimeUnit.MILLISECONDS.sleep(POLL_MS);
    }
    String state = r.target.name() + " after the heal: " + describe(s.info(), s.error());
    if (!r.replaced) {
      return state;
    }
    boolean retired = s.info() != null && s.info().memberRole() == MemberRole.RETIRED;
    if (!retired) {
      log.atWarn().setMessage("removed node not retired after the heal").addKeyValue("node", r.target.name())
          .addKeyValue("state", state).log();
    }
    String probe = readThrough(cluster, r);
    long exit = cluster.stop(r.target, Duration.ofSeconds(5));
    return (retired ? "" : "NOT RETIRED: ") + state + "; " + probe + "; its container stopped (exit " + exit + ")";
  }

  /**
   * readThrough checks that the removed node does not disrupt: a value written through the members now is
   * read through a client that knows the removed node alone. Its own answer must be that value (it
   * redirected to the primary) or none (it serves nothing: a timeout, unavailable); any other value is a
   * stale read served by a replica that is no member any more, and says {@code STALE READ}.
   */
  static String readThrough(Cluster cluster, Replacement r) {
    String key = "_jepsen/member-replace/" + r.target.name();
    String value = r.joiner().map(Cluster.Node::name).orElse("?") + "@" + System.nanoTime();
    try (ChoirClient members = cluster.clientBuilder(cluster.endpoints()).requestTimeout(ADMIN_TIMEOUT)
        .eventLoopThreads(1).build()) {
      members.put(key, value);
    } catch (RuntimeException e) {
      return "no read probe (the write through the members failed: " + e.getMessage() + ")";
    }
    try (ChoirClient only = cluster.clientBuilder(List.of(r.target.endpoint())).requestTimeout(Duration.ofSeconds(3))
        .connectTimeout(Duration.ofSeconds(1)).eventLoopThreads(1).build()) {
      Optional<VersionedValue> got = only.get(key);
      if (got.isPresent() && got.get().valueAsString().equals(value)) {
        return "a read through it alone returned the value just written (redirected)";
      }
      log.atError().setMessage("a removed replica served a stale read").addKeyValue("node", r.target.name())
          .addKeyValue("key", key).addKeyValue("got", got.map(VersionedValue::valueAsString).orElse("nothing"))
          .log();
      return "STALE READ through it alone: " + got.map(VersionedValue::valueAsString).orElse("no value")
          + " instead of " + value;
    } catch (RuntimeException e) {
      return "a read through it alone got no answer (" + e.getClass().getSimpleName() + ")";
    }
  }

  private static String describe(ReplicaInfo i, Throwable error) {
    if (i == null) {
      return "no answer (" + (error == null ? "?" : error.getClass().getSimpleName()) + ")";
    }
    return i.memberRole() + " in epoch " + i.epoch() + ", " + i.role() + " in its view " + i.viewInEpoch()
        + ", primary " + i.primaryId() + ", applied " + i.applied();
  }

  private static List<Integer> ids(List<Member> members) {
    return members.stream().map(Member::id).sorted().toList();
  }

  private static void nft(Cluster cluster, Cluster.Node n, String script) {
    Docker.ExecResult r = cluster.exec(n, Nft.command(script));
    if (!r.ok()) {
      throw new IllegalStateException("nft on " + n + " exited " + r.exitCode() + ": " + r.stderr().trim());
    }
  }

  private static void healQuietly(Cluster cluster, Cluster.Node n) {
    try {
      if (cluster.isRunning(n)) {
        nft(cluster, n, Nft.heal());
      }
    } catch (RuntimeException e) {
      log.atWarn().setMessage("heal nft").addKeyValue("node", n.name()).addKeyValue("error", e.toString()).log();
    }
  }
}
