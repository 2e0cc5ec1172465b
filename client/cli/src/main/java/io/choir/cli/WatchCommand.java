package io.choir.cli;

import io.choir.client.ChoirClient;
import io.choir.client.ChoirException;
import io.choir.client.Watch;
import io.choir.client.WatchCompactedException;
import io.choir.client.WatchEvent;
import io.choir.client.WatchListener;
import io.choir.client.WatchOptions;
import java.io.PrintWriter;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * WatchCommand is {@code choir watch KEY | --prefix P [--from REV] [--prev] [--json]}: prints one line
 * per change (or one JSON object per line) until Ctrl-C, or until --max-events changes; it follows the
 * watch across lost connections and failovers (the client library resumes it). A start older than the
 * replicas keep ends it with exit 1 and the oldest revision they keep (docs/watch.md).
 */
@Command(name = "watch", mixinStandardHelpOptions = true,
    description = "Print every change of KEY (or of every key under --prefix) as it happens, until Ctrl-C.")
final class WatchCommand extends KvCommands.Base {
  @Parameters(index = "0", arity = "0..1", paramLabel = "KEY", description = "The key to watch.") String key;

  @Option(names = "--prefix", paramLabel = "P", description = "Watch every key that starts with P (\"\": every key).")
  String prefix;

  @Option(names = "--from", paramLabel = "REV", description = "Start at revision REV (inclusive; default: from now).")
  long from;

  @Option(names = "--prev", description = "Also print each change's previous value.")
  boolean prev;

  @Option(names = "--max-events", paramLabel = "N", description = "Stop after N changes (default: never).")
  long maxEvents;

  @Override
  int run(ChoirClient client, PrintWriter out) {
    if ((key == null) == (prefix == null)) {
      throw new CommandLine.ParameterException(spec.commandLine(), "give either KEY or --prefix P");
    }
    if (from < 0 || maxEvents < 0) {
      throw new CommandLine.ParameterException(spec.commandLine(), "--from and --max-events are not negative");
    }
    WatchOptions watch = (key != null ? WatchOptions.key(key) : WatchOptions.prefix(prefix)).fromRevision(from);
    if (prev) {
      watch = watch.withPrevValue();
    }
    CountDownLatch done = new CountDownLatch(1);
    AtomicReference<ChoirException> failure = new AtomicReference<>();
    AtomicLong printed = new AtomicLong();
    try (Watch w = client.watch(watch, new WatchListener() {
      @Override
      public void onEvent(WatchEvent event) {
        if (maxEvents > 0 && printed.get() >= maxEvents) {
          return;
        }
        print(out, event);
        if (printed.incrementAndGet() == maxEvents) {
          done.countDown();
        }
      }

      @Override
      public void onError(ChoirException error) {
        failure.set(error);
        done.countDown();
      }
    })) {
      done.await();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return Choir.EXIT_ERROR;
    }
    ChoirException e = failure.get();
    if (e instanceof WatchCompactedException c) {
      String message = e.getMessage() + "; watch from " + c.oldestRevision() + " or later";
      if (options.json) {
        options.printJson(out, Map.of("ok", false, "error", "compacted", "message", message,
            "oldest_revision", c.oldestRevision()));
      } else {
        spec.commandLine().getErr().println("choir: compacted: " + message);
      }
      return Choir.EXIT_NOT_FOUND;
    }
    return e == null ? Choir.EXIT_OK : options.fail(out, spec.commandLine().getErr(), e);
  }

  private void print(PrintWriter out, WatchEvent e) {
    synchronized (out) {
      if (options.json) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("revision", e.revision());
        m.put("kind", e.kind().name().toLowerCase(Locale.ROOT));
        m.put("key", e.keyAsString());
        if (e.kind() == WatchEvent.Kind.PUT) {
          m.put("value", e.valueAsString());
        }
        if (prev) {
          m.put("prev_value", e.prevValueAsString());
          m.put("prev_version", e.prevVersion());
        }
        options.printJson(out, m);
      } else {
        StringBuilder b = new StringBuilder().append(e.revision()).append('\t')
            .append(e.kind().name().toLowerCase(Locale.ROOT)).append('\t').append(e.keyAsString());
        if (e.kind() == WatchEvent.Kind.PUT) {
          b.append('\t').append(e.valueAsString());
        }
        if (prev) {
          b.append("\tprev=").append(e.prevValue() == null ? "(absent)" : e.prevValueAsString());
        }
        out.println(b);
      }
      out.flush();
    }
  }
}
