package io.choir.launcher;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.LoggerContext;
import io.choir.cli.Choir;
import io.choir.server.config.ConfigException;
import io.choir.server.config.ServerConfig;
import io.choir.server.config.Setting;
import io.choir.server.replica.Recovery;
import io.choir.server.replica.ReplicaServer;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.slf4j.LoggerFactory;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Model.OptionSpec;
import picocli.CommandLine.Option;

/**
 * ServerCommand runs one replica in the foreground until SIGTERM or Ctrl-C, then shuts it down
 * gracefully. Every setting of {@link ServerConfig} is also a flag (--max-frame-bytes for
 * max_frame_bytes), added programmatically so that no setting can lack one; flags override the file.
 */
@Command(name = "server", description = "Run one replica (settings from --config FILE, then flags).",
    mixinStandardHelpOptions = true)
final class ServerCommand implements Callable<Integer> {
  /** How long a signal during the start waits for it to end before the JVM halts anyway. */
  private static final long START_WAIT_SECONDS = 60;

  @CommandLine.Spec CommandSpec spec;

  @Option(names = "--config", paramLabel = "FILE", description = "YAML file of settings.")
  Path config;

  @Option(names = "--print-config", description = "Print the effective settings and exit.")
  boolean printConfig;

  @Option(names = "--rejoin", description = "This replica lost its data (or its folder was refused as"
      + " damaged): move the data folder aside, start empty, fetch the state from the others and take no"
      + " part in votes until caught up. Use once, while a majority of the others is healthy.")
  boolean rejoin;

  /** Adds one option per setting to the server command's spec. */
  static void addSettingOptions(CommandSpec server) {
    for (Setting<?> s : ServerConfig.settings().values()) {
      server.addOption(OptionSpec.builder(s.flag())
          .paramLabel("VALUE")
          .type(String.class)
          .description(s.description() + " (default: " + s.defaultValue() + ")")
          .build());
    }
  }

  @Override
  public Integer call() throws Exception {
    Map<String, Object> overrides = new LinkedHashMap<>();
    for (Setting<?> s : ServerConfig.settings().values()) {
      OptionSpec o = spec.findOption(s.flag());
      if (o != null && o.getValue() != null) {
        overrides.put(s.key(), o.getValue());
      }
    }
    ServerConfig cfg;
    try {
      cfg = ServerConfig.load(config, overrides);
    } catch (ConfigException e) {
      spec.commandLine().getErr().println("choir server: bad configuration: " + e.getMessage());
      return Choir.EXIT_USAGE;
    }
    if (printConfig) {
      cfg.asMap().forEach((k, v) -> spec.commandLine().getOut().println(k + ": " + v));
      return Choir.EXIT_OK;
    }
    setLogLevel(cfg.logLevel());
    // SIGTERM or Ctrl-C: shut down gracefully, then end with status 0 (not the JVM's 143 for a signal),
    // since a graceful stop is a success for supervisors such as systemd or `docker stop`. The hook is
    // installed before the replica starts: a signal while it starts (recovery, opening the storage and
    // the sockets take seconds in a container) waits for the start to end and then stops the replica
    // like any other, rather than leaving the JVM to exit with 143 and no clean-shutdown marker.
    CompletableFuture<ReplicaServer> started = new CompletableFuture<>();
    Thread hook = new Thread(() -> {
      int status = Choir.EXIT_ERROR;
      try {
        ReplicaServer s = started.get(START_WAIT_SECONDS, TimeUnit.SECONDS);
        s.close();
        status = s.terminated().join() == null ? Choir.EXIT_OK : Choir.EXIT_ERROR;
      } catch (ExecutionException e) {
        // The start failed: it said why already.
      } catch (Throwable e) {
        // A hook that dies would also leave the JVM to exit with 143, which says nothing of why.
        LoggerFactory.getLogger(ServerCommand.class).atError().setCause(e).log("replica shutdown failed");
      } finally {
        Runtime.getRuntime().halt(status);
      }
    }, "choir-shutdown");
    Runtime.getRuntime().addShutdownHook(hook);
    ReplicaServer server;
    try {
      if (rejoin) {
        Path aside = Recovery.prepareRejoin(cfg.dataDir());
        spec.commandLine().getErr().println("choir server: rejoining with an empty data folder"
            + (aside == null ? "" : "; the old one is kept at " + aside));
      }
      server = ReplicaServer.start(cfg);
      started.complete(server);
    } catch (RuntimeException e) {
      started.completeExceptionally(e);
      spec.commandLine().getErr().println("choir server: cannot start: " + e.getMessage());
      return Choir.EXIT_ERROR;
    } catch (Throwable e) { // an I/O failure of --rejoin, or an Error: the hook must not wait for a start
      started.completeExceptionally(e);
      throw e;
    }
    Throwable cause = server.terminated().join();
    if (cause != null) {
      spec.commandLine().getErr().println("choir server: stopped after a fatal error: " + cause);
      return Choir.EXIT_ERROR;
    }
    return Choir.EXIT_OK;
  }

  static void setLogLevel(String level) {
    if (LoggerFactory.getILoggerFactory() instanceof LoggerContext ctx) {
      ctx.getLogger("io.choir").setLevel(Level.toLevel(level, Level.INFO));
    }
  }
}
