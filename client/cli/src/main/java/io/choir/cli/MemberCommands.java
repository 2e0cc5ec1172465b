package io.choir.cli;

import io.choir.client.CatchUpProgress;
import io.choir.client.ChoirClient;
import io.choir.client.ChoirTimeoutException;
import io.choir.client.LearnerNotCaughtUpException;
import io.choir.client.MemberChangeRefusedException;
import io.choir.client.Membership;
import io.choir.client.MembershipClient;
import java.io.PrintWriter;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * MemberCommands are `choir member list|add|promote|remove|replace` (DESIGN.md "Membership"). Each
 * change prints the membership after it. Exit codes: 0 done; 2 refused by the primary (nothing was
 * executed; the reason is printed) or bad arguments; 3 outcome unknown (no answer after the change was
 * sent: check `choir member list`), or the new learner did not catch up in time (it was added, not
 * promoted), or no replica reachable (not executed).
 */
final class MemberCommands {
  /** What an unknown outcome tells the operator to do. */
  static final String CHECK = "outcome unknown: check `choir member list`";

  private MemberCommands() {}

  /** The `choir member` command with its subcommands, in the order its help lists them. */
  static CommandLine commandLine() {
    CommandLine cl = new CommandLine(new Group());
    cl.addSubcommand(new ListMembers());
    cl.addSubcommand(new Add());
    cl.addSubcommand(new Promote());
    cl.addSubcommand(new Remove());
    cl.addSubcommand(new Replace());
    return cl;
  }

  @Command(name = "member", mixinStandardHelpOptions = true,
      description = "List and change the members of the cluster: voters, learners, epochs.")
  static final class Group implements Runnable {
    @CommandLine.Spec CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
      throw new CommandLine.ParameterException(spec.commandLine(),
          "a subcommand is required: list, add, promote, remove or replace");
    }
  }

  /** Base of the member commands: prints the resulting membership, maps refusals and unknown outcomes. */
  abstract static class Base extends KvCommands.Base {
    abstract Membership call(MembershipClient members);

    /** Whether the command changes the membership (a timeout is then an unknown outcome). */
    boolean changes() {
      return false;
    }

    @Override
    int run(ChoirClient client, PrintWriter out) {
      PrintWriter err = spec.commandLine().getErr();
      Membership m;
      try {
        m = call(client.membership());
      } catch (MemberChangeRefusedException e) {
        return fail(out, err, Choir.EXIT_USAGE, "refused", "refused: " + e.getMessage(), Map.of("reason", e.reason()));
      } catch (LearnerNotCaughtUpException e) {
        Map<String, Object> extra = new LinkedHashMap<>();
        extra.put("learner", e.learnerId());
        extra.put("acked_op", e.ackedOp());
        extra.put("target_op", e.targetOp());
        return fail(out, err, Choir.EXIT_UNAVAILABLE, "not_caught_up", "not caught up: " + e.getMessage(), extra);
      } catch (ChoirTimeoutException e) {
        if (!changes()) {
          throw e; // a read: a plain timeout
        }
        return fail(out, err, Choir.EXIT_UNAVAILABLE, "outcome_unknown", CHECK + " (" + e.getMessage() + ")", Map.of());
      }
      if (options.json) {
        options.printJson(out, MembershipOutput.json(m));
      } else {
        MembershipOutput.print(out, m);
      }
      return Choir.EXIT_OK;
    }

    private int fail(PrintWriter out, PrintWriter err, int code, String kind, String line, Map<String, Object> extra) {
      if (options.json) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("ok", false);
        m.put("error", kind);
        m.put("message", line);
        m.putAll(extra);
        options.printJson(out, m);
      } else {
        err.println("choir: " + line);
      }
      return code;
    }
  }

  /** Base of the changes: the expected epoch. */
  abstract static class Change extends Base {
    @Option(names = "--expect-epoch", paramLabel = "E", defaultValue = "0",
        description = "Refuse unless the epoch is E (as `choir member list` shows it). Default: any epoch.")
    long expectEpoch;

    @Override
    boolean changes() {
      return true;
    }
  }

  /** Base of the changes that add a learner and wait for it: addresses, the catch-up wait, progress. */
  abstract static class Adding extends Change {
    @Option(names = "--client", paramLabel = "HOST:PORT", description = "The new member's client address.")
    String clientAddress;

    @Option(names = "--peer", paramLabel = "HOST:PORT", description = "The new member's peer address.")
    String peerAddress;

    @Option(names = "--timeout", paramLabel = "S", defaultValue = "120",
        description = "Longest wait in seconds for the new learner to catch up (--timeout-ms bounds each request)."
            + " Default: ${DEFAULT-VALUE}")
    long catchUpSeconds;

    Duration catchUpTimeout() {
      if (catchUpSeconds < 0) {
        throw new IllegalArgumentException("--timeout must be >= 0 seconds");
      }
      return Duration.ofSeconds(catchUpSeconds);
    }

    /** Progress on stderr: at most one line a second, and the last one. */
    Consumer<CatchUpProgress> progress() {
      PrintWriter err = spec.commandLine().getErr();
      long[] lastPrintMs = {-1};
      return p -> {
        if (!p.caughtUp() && lastPrintMs[0] >= 0 && p.elapsedMs() - lastPrintMs[0] < 1_000) {
          return;
        }
        lastPrintMs[0] = p.elapsedMs();
        err.printf("learner %d %s: acked op %d of %d (%d s)%n", p.learnerId(),
            p.caughtUp() ? "caught up" : "catching up", p.ackedOp(), p.targetOp(),
            TimeUnit.MILLISECONDS.toSeconds(p.elapsedMs()));
        err.flush();
      };
    }
  }

  @Command(name = "list", mixinStandardHelpOptions = true,
      description = "Show the epoch and every member: id, role, addresses, acked op (from the primary).")
  static final class ListMembers extends Base {
    @Override
    Membership call(MembershipClient members) {
      return members.members();
    }
  }

  @Command(name = "add", mixinStandardHelpOptions = true,
      description = "Add member ID as a learner, wait until it has caught up, then make it a voter.")
  static final class Add extends Adding {
    @Parameters(index = "0", paramLabel = "ID", description = "The new member's replica id.") int id;

    @Option(names = "--learner-only", description = "Only add it as a learner (promote it later with `member promote`).")
    boolean learnerOnly;

    @Override
    Membership call(MembershipClient members) {
      if (clientAddress == null || peerAddress == null) {
        throw new CommandLine.ParameterException(spec.commandLine(), "member add needs --client and --peer");
      }
      return learnerOnly
          ? members.addLearner(id, clientAddress, peerAddress, expectEpoch)
          : members.addMember(id, clientAddress, peerAddress, expectEpoch, catchUpTimeout(), progress());
    }
  }

  @Command(name = "promote", mixinStandardHelpOptions = true,
      description = "Make learner ID a voter (refused until it has caught up).")
  static final class Promote extends Change {
    @Parameters(index = "0", paramLabel = "ID") int id;

    @Override
    Membership call(MembershipClient members) {
      return members.promote(id, expectEpoch);
    }
  }

  @Command(name = "remove", mixinStandardHelpOptions = true,
      description = "Remove member ID (a voter retires in a new epoch).")
  static final class Remove extends Change {
    @Parameters(index = "0", paramLabel = "ID") int id;

    @Override
    Membership call(MembershipClient members) {
      return members.removeMember(id, expectEpoch);
    }
  }

  @Command(name = "replace", mixinStandardHelpOptions = true,
      description = "Replace voter OLD by NEW: add NEW as a learner (with --client and --peer), wait until it has"
          + " caught up, then swap them in one new epoch. Without the addresses NEW must be a learner already.")
  static final class Replace extends Adding {
    @Parameters(index = "0", paramLabel = "OLD") int oldId;
    @Parameters(index = "1", paramLabel = "NEW") int newId;

    @Override
    Membership call(MembershipClient members) {
      if ((clientAddress == null) != (peerAddress == null)) {
        throw new CommandLine.ParameterException(spec.commandLine(), "--client and --peer go together");
      }
      return clientAddress == null
          ? members.replaceMember(oldId, newId, expectEpoch)
          : members.replaceMember(oldId, newId, clientAddress, peerAddress, expectEpoch, catchUpTimeout(), progress());
    }
  }
}
