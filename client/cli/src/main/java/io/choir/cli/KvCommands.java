package io.choir.cli;

import io.choir.client.CasFailedException;
import io.choir.client.ChoirClient;
import io.choir.client.ChoirException;
import io.choir.client.KeyValueVersion;
import io.choir.client.ReadConsistency;
import io.choir.client.ScanResult;
import io.choir.client.VersionedValue;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** KvCommands are the key-value client commands: put, get, delete, cas, scan. Keys and values are UTF-8. */
final class KvCommands {
  private KvCommands() {}

  /**
   * Base of the commands: checks that some endpoint accepts a connection ({@link Reachability}: with
   * none, one line and exit 3 at once), connects, runs, maps typed errors to exit codes.
   */
  abstract static class Base implements Callable<Integer> {
    @CommandLine.Spec CommandLine.Model.CommandSpec spec;
    @Mixin ClientOptions options = new ClientOptions();

    abstract int run(ChoirClient client, PrintWriter out);

    @Override
    public Integer call() {
      PrintWriter out = spec.commandLine().getOut();
      PrintWriter err = spec.commandLine().getErr();
      Optional<String> down = Reachability.noneAnswers(options.endpointList(), options.probeBudgetMs());
      if (down.isPresent()) {
        return options.noReplica(out, err, down.get());
      }
      try (ChoirClient client = options.connect()) {
        return run(client, out);
      } catch (ChoirException e) {
        return options.fail(out, err, e);
      } catch (IllegalArgumentException e) {
        err.println("choir: " + e.getMessage());
        return Choir.EXIT_USAGE;
      } finally {
        out.flush();
        err.flush();
      }
    }
  }

  static Map<String, Object> kv(String key, String value, long version) {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("key", key);
    m.put("value", value);
    m.put("version", version);
    return m;
  }

  @Command(name = "put", description = "Write VALUE under KEY; prints the new version.", mixinStandardHelpOptions = true)
  static final class Put extends Base {
    @Parameters(index = "0", paramLabel = "KEY") String key;
    @Parameters(index = "1", paramLabel = "VALUE") String value;

    @Option(names = "--lease", paramLabel = "ID", description = "Attach KEY to lease ID: it is deleted when the lease ends.")
    long lease;

    @Override
    int run(ChoirClient client, PrintWriter out) {
      long version = lease == 0 ? client.put(key, value) : client.leases().put(key, value, lease);
      if (options.json) {
        Map<String, Object> m = kv(key, value, version);
        m.put("ok", true);
        options.printJson(out, m);
      } else {
        out.println(version);
      }
      return Choir.EXIT_OK;
    }
  }

  @Command(name = "get", description = "Print the value of KEY (exit 1 when absent).", mixinStandardHelpOptions = true)
  static final class Get extends Base {
    @Parameters(index = "0", paramLabel = "KEY") String key;

    @Option(names = "--sequential", description = "Read from any replica's applied state (faster, not linearizable).")
    boolean sequential;

    @Override
    int run(ChoirClient client, PrintWriter out) {
      Optional<VersionedValue> v = sequential
          ? client.get(key, ReadConsistency.SEQUENTIAL) : client.get(key);
      if (options.json) {
        Map<String, Object> m = v.isPresent()
            ? kv(key, v.get().valueAsString(), v.get().version()) : kv(key, null, 0);
        m.put("ok", true);
        m.put("found", v.isPresent());
        options.printJson(out, m);
      } else if (v.isPresent()) {
        out.println(v.get().valueAsString());
      } else {
        spec.commandLine().getErr().println("choir: not found: " + key);
      }
      return v.isPresent() ? Choir.EXIT_OK : Choir.EXIT_NOT_FOUND;
    }
  }

  @Command(name = "delete", description = "Delete KEY (exit 1 when it did not exist).", mixinStandardHelpOptions = true)
  static final class Delete extends Base {
    @Parameters(index = "0", paramLabel = "KEY") String key;

    @Override
    int run(ChoirClient client, PrintWriter out) {
      boolean existed = client.delete(key);
      if (options.json) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("ok", true);
        m.put("key", key);
        m.put("existed", existed);
        options.printJson(out, m);
      } else if (!existed) {
        spec.commandLine().getErr().println("choir: not found: " + key);
      }
      return existed ? Choir.EXIT_OK : Choir.EXIT_NOT_FOUND;
    }
  }

  @Command(name = "cas", description = "Set KEY to NEW only if its value is EXPECTED (exit 1 otherwise).",
      mixinStandardHelpOptions = true)
  static final class Cas extends Base {
    @Parameters(index = "0", paramLabel = "KEY") String key;
    @Parameters(index = "1", paramLabel = "EXPECTED", arity = "0..1",
        description = "Expected current value (omit with --absent or --version).") String expected;
    @Parameters(index = "2", paramLabel = "NEW", arity = "0..1") String newValue;

    @Option(names = "--version", paramLabel = "V", description = "Compare the version instead: cas KEY NEW --version V")
    Long version;

    @Option(names = "--absent", description = "Succeed only if KEY is absent: cas KEY NEW --absent")
    boolean absent;

    @Override
    int run(ChoirClient client, PrintWriter out) {
      long written;
      String value;
      try {
        if (absent || version != null) {
          if (expected == null || newValue != null || (absent && version != null)) {
            throw new CommandLine.ParameterException(spec.commandLine(),
                "with --absent or --version give KEY NEW only (and not both options)");
          }
          value = expected;
          written = absent ? client.putIfAbsent(key, value) : client.compareAndSetVersion(key, version, value);
        } else {
          if (expected == null || newValue == null) {
            throw new CommandLine.ParameterException(spec.commandLine(), "usage: cas KEY EXPECTED NEW");
          }
          value = newValue;
          written = client.compareAndSet(key, expected, newValue);
        }
      } catch (CasFailedException e) {
        if (options.json) {
          Map<String, Object> m = new LinkedHashMap<>();
          m.put("ok", false);
          m.put("error", "cas_failed");
          m.put("key", key);
          m.put("current_value", e.currentValue() == null ? null
              : new String(e.currentValue(), StandardCharsets.UTF_8));
          m.put("current_version", e.currentVersion());
          options.printJson(out, m);
        } else {
          spec.commandLine().getErr().println("choir: cas failed: current "
              + (e.currentValue() == null ? "absent"
                  : "value " + new String(e.currentValue(), StandardCharsets.UTF_8) + " at version " + e.currentVersion()));
        }
        return Choir.EXIT_NOT_FOUND;
      }
      if (options.json) {
        Map<String, Object> m = kv(key, value, written);
        m.put("ok", true);
        options.printJson(out, m);
      } else {
        out.println(written);
      }
      return Choir.EXIT_OK;
    }
  }

  @Command(name = "scan", description = "List keys in [START, END) in byte order (END \"\" = to the end).",
      mixinStandardHelpOptions = true)
  static final class Scan extends Base {
    @Parameters(index = "0", paramLabel = "START") String start;
    @Parameters(index = "1", paramLabel = "END", defaultValue = "") String end;

    @Option(names = "--limit", paramLabel = "N", defaultValue = "1000", description = "At most N pairs. Default: ${DEFAULT-VALUE}")
    int limit;

    @Override
    int run(ChoirClient client, PrintWriter out) {
      if (limit < 1) {
        throw new IllegalArgumentException("--limit must be at least 1");
      }
      ScanResult r = client.scan(start, end, limit);
      if (options.json) {
        List<Map<String, Object>> items = new ArrayList<>();
        for (KeyValueVersion e : r.entries()) {
          items.add(kv(e.keyAsString(), e.valueAsString(), e.version()));
        }
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("ok", true);
        m.put("kvs", items);
        m.put("more", r.more());
        options.printJson(out, m);
      } else {
        for (KeyValueVersion e : r.entries()) {
          out.println(e.keyAsString() + "\t" + e.valueAsString());
        }
        if (r.more()) {
          spec.commandLine().getErr().println("choir: more keys follow (raise --limit)");
        }
      }
      return Choir.EXIT_OK;
    }
  }
}
