package io.choir.cli;

import io.choir.client.ChoirClient;
import io.choir.client.LeaseStatus;
import java.io.PrintWriter;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;

/**
 * LeaseCommands are `choir lease grant TTL | keepalive ID | revoke ID | list` (docs/lease.md). TTL is
 * milliseconds, or a number with a unit (500ms, 10s, 5m, 1h). A CLI call keeps nothing alive once it
 * exits: `grant` prints the lease id, and the caller keeps it alive with `keepalive` or lets it expire.
 * Exit codes: 0 done; 1 the lease does not exist (never granted, revoked or expired: nothing was
 * executed); 2 bad arguments (a TTL of 0 or above a day); 3 unavailable or outcome unknown.
 */
final class LeaseCommands {
  private LeaseCommands() {}

  /** The `choir lease` command with its subcommands. */
  static CommandLine commandLine() {
    CommandLine cl = new CommandLine(new Group());
    cl.addSubcommand(new Grant());
    cl.addSubcommand(new KeepAlive());
    cl.addSubcommand(new Revoke());
    cl.addSubcommand(new ListLeases());
    return cl;
  }

  @Command(name = "lease", mixinStandardHelpOptions = true,
      description = "Grant, keep alive, revoke and list leases (keys attached with `choir put --lease ID`).")
  static final class Group implements Runnable {
    @CommandLine.Spec CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
      throw new CommandLine.ParameterException(spec.commandLine(),
          "a subcommand is required: grant, keepalive, revoke or list");
    }
  }

  /** TTL as milliseconds, or with a unit: ms, s, m, h. */
  static Duration ttl(String text) {
    String t = text.trim().toLowerCase(Locale.ROOT);
    long factor = 1;
    String number = t;
    if (t.endsWith("ms")) {
      number = t.substring(0, t.length() - 2);
    } else if (t.endsWith("s")) {
      factor = 1_000;
      number = t.substring(0, t.length() - 1);
    } else if (t.endsWith("m")) {
      factor = 60_000;
      number = t.substring(0, t.length() - 1);
    } else if (t.endsWith("h")) {
      factor = 3_600_000;
      number = t.substring(0, t.length() - 1);
    }
    long value;
    try {
      value = Long.parseLong(number.trim());
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException("not a TTL: " + text + " (milliseconds, or 500ms, 10s, 5m, 1h)");
    }
    if (value <= 0 || value > 86_400_000L / factor) {
      throw new IllegalArgumentException("a lease TTL must be above 0 and at most one day: " + text);
    }
    return Duration.ofMillis(value * factor);
  }

  static Map<String, Object> json(LeaseStatus s) {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("id", s.id());
    m.put("ttl_ms", s.ttlMs());
    m.put("remaining_ms", s.remainingMs());
    m.put("keys", s.keys());
    return m;
  }

  /** Base: prints a lease; a lease that does not exist is exit 1 (ClientOptions.fail). */
  abstract static class Base extends KvCommands.Base {

    int printLease(PrintWriter out, LeaseStatus s, boolean idOnly) {
      if (options.json) {
        Map<String, Object> m = json(s);
        m.put("ok", true);
        options.printJson(out, m);
      } else if (idOnly) {
        out.println(s.id());
      } else {
        out.println(s.id() + "\tttl " + s.ttlMs() + " ms\tremaining " + s.remainingMs() + " ms\tkeys " + s.keys());
      }
      return Choir.EXIT_OK;
    }
  }

  @Command(name = "grant", mixinStandardHelpOptions = true,
      description = "Grant a lease of TTL (ms, or 500ms, 10s, 5m, 1h; at most 1 day); prints its id.")
  static final class Grant extends Base {
    @Parameters(index = "0", paramLabel = "TTL") String ttl;

    @Override
    int run(ChoirClient client, PrintWriter out) {
      return printLease(out, client.leases().grantOnce(ttl(ttl)), true);
    }
  }

  @Command(name = "keepalive", mixinStandardHelpOptions = true,
      description = "Keep lease ID alive once: its deadline becomes now plus its TTL.")
  static final class KeepAlive extends Base {
    @Parameters(index = "0", paramLabel = "ID") long id;

    @Override
    int run(ChoirClient client, PrintWriter out) {
      return printLease(out, client.leases().keepAlive(id), false);
    }
  }

  @Command(name = "revoke", mixinStandardHelpOptions = true,
      description = "Revoke lease ID: it and every key attached to it are deleted.")
  static final class Revoke extends Base {
    @Parameters(index = "0", paramLabel = "ID") long id;

    @Override
    int run(ChoirClient client, PrintWriter out) {
      long op = client.leases().revoke(id);
      if (options.json) {
        options.printJson(out, Map.of("ok", true, "id", id, "version", op));
      }
      return Choir.EXIT_OK;
    }
  }

  @Command(name = "list", mixinStandardHelpOptions = true, description = "List the live leases in id order.")
  static final class ListLeases extends Base {
    @Override
    int run(ChoirClient client, PrintWriter out) {
      List<Map<String, Object>> all = new ArrayList<>();
      long next = 1;
      while (true) {
        List<LeaseStatus> page = client.leases().list(next, 0);
        for (LeaseStatus s : page) {
          if (options.json) {
            all.add(json(s));
          } else {
            out.println(s.id() + "\tttl " + s.ttlMs() + " ms\tremaining " + s.remainingMs() + " ms\tkeys " + s.keys());
          }
        }
        if (page.isEmpty()) {
          break;
        }
        next = page.get(page.size() - 1).id() + 1;
      }
      if (options.json) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("ok", true);
        m.put("leases", all);
        options.printJson(out, m);
      }
      return Choir.EXIT_OK;
    }
  }
}
