package io.choir.launcher;

import io.choir.cli.Choir;
import io.choir.server.security.ClusterKeys;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** ClusterCommand groups the local-cluster helpers: init writes configs, up runs every replica. */
@Command(name = "cluster", description = "Create and run a local cluster on loopback.",
    mixinStandardHelpOptions = true,
    subcommands = {ClusterCommand.Init.class, ClusterCommand.Up.class})
final class ClusterCommand implements Runnable {
  @CommandLine.Spec CommandLine.Model.CommandSpec spec;

  /** Replicas a local cluster has unless told otherwise: 2f+1 = 3 tolerates one failure. */
  static final int DEFAULT_REPLICAS = 3;

  @Override
  public void run() {
    throw new CommandLine.ParameterException(spec.commandLine(), "use 'cluster init' or 'cluster up'");
  }

  /** Options shared by init and up. */
  static final class Layout {
    @Option(names = "--dir", paramLabel = "DIR", defaultValue = "cluster",
        description = "Folder for the configs (DIR/node1.yaml...) and data (DIR/data/nodeN). Default: ${DEFAULT-VALUE}")
    Path dir;

    @Option(names = "--replicas", paramLabel = "N", defaultValue = "" + DEFAULT_REPLICAS,
        description = "Number of replicas (odd). Default: ${DEFAULT-VALUE}")
    int replicas;

    @Option(names = "--base-port", paramLabel = "PORT", defaultValue = "7301",
        description = "Client port of node1; node i uses PORT+i-1, peers PORT+100+i-1, multicast PORT+199.")
    int basePort;

    @Option(names = "--cluster-id", defaultValue = "choir-local", description = "Cluster name.")
    String clusterId;

    @Option(names = "--durability", defaultValue = "fsync", description = "fsync or buffered.")
    String durability;

    @Option(names = "--peer-transport", paramLabel = "MODE", defaultValue = "multicast",
        description = "How a message to all replicas travels: multicast, unicast (no multicast at all) or auto"
            + " (multicast where it works, per peer). Default: ${DEFAULT-VALUE}")
    String peerTransport;

    @Option(names = "--tls", description = "Also write a CA, a certificate per replica and a client certificate"
        + " (CN=root) into DIR/tls, turn on TLS with client certificates required, and write an access file"
        + " that lets root read and write everything.")
    boolean tls;
  }

  static List<Path> configs(Path dir) throws IOException {
    if (!Files.isDirectory(dir)) {
      return List.of();
    }
    try (Stream<Path> s = Files.list(dir)) {
      return s.filter(p -> p.getFileName().toString().matches("node\\d+\\.yaml")).sorted().toList();
    }
  }

  /** Writes one YAML config per replica; returns their paths. */
  static List<Path> writeConfigs(Layout l, boolean force, PrintWriter out) throws IOException {
    if (l.replicas < 1 || l.replicas > 7 || l.replicas % 2 == 0) {
      throw new IllegalArgumentException("--replicas must be 1, 3, 5 or 7 (2f+1), got " + l.replicas);
    }
    if (l.basePort < 1 || l.basePort + 199 > 65535) {
      throw new IllegalArgumentException("--base-port " + l.basePort + " leaves no room for the ports");
    }
    if (!List.of("multicast", "unicast", "auto").contains(l.peerTransport)) {
      throw new IllegalArgumentException("--peer-transport must be multicast, unicast or auto, got " + l.peerTransport);
    }
    if (!force && !configs(l.dir).isEmpty()) {
      throw new IllegalArgumentException(l.dir + " already holds a cluster (use --force to overwrite)");
    }
    Files.createDirectories(l.dir);
    // One fresh key per cluster: every replica seals its datagrams and proves its peer streams with it.
    Path keyFile = l.dir.toAbsolutePath().resolve("cluster.key");
    if (force || !Files.exists(keyFile)) {
      ClusterKeys.generate(1, new SecureRandom()).write(keyFile);
      out.println("wrote " + keyFile);
    }
    String tlsYaml = l.tls ? LocalTls.write(l.dir.toAbsolutePath().resolve("tls"), l.replicas, out) : null;
    StringBuilder members = new StringBuilder();
    for (int i = 1; i <= l.replicas; i++) {
      members.append("  - id: ").append(i).append('\n')
          .append("    client: 127.0.0.1:").append(l.basePort + i - 1).append('\n')
          .append("    peer: 127.0.0.1:").append(l.basePort + 100 + i - 1).append('\n');
    }
    List<Path> written = new ArrayList<>();
    for (int i = 1; i <= l.replicas; i++) {
      Path file = l.dir.resolve("node" + i + ".yaml");
      String yaml = "# Choir replica " + i + " of " + l.replicas + " (written by `choir cluster init`).\n"
          + "# Every setting is listed by `choir server --help`; unset ones take their defaults.\n"
          + "cluster_id: " + l.clusterId + "\n"
          + "replica_id: " + i + "\n"
          + "replicas:\n" + members
          + "data_dir: " + l.dir.toAbsolutePath().resolve("data").resolve("node" + i) + "\n"
          + "durability: " + l.durability + "\n"
          + "# Multicast stays on loopback unless you name a LAN interface.\n"
          + "multicast_group: 239.255.77.1:" + (l.basePort + 199) + "\n"
          + "multicast_interface: lo\n"
          + "# multicast, unicast (never joins the group) or auto (multicast where it works, per peer).\n"
          + "peer_transport: " + l.peerTransport + "\n"
          + "max_datagram_bytes: 60000\n"
          + "# The cluster's secret key (peer datagrams sealed, peer streams proven): keep it private.\n"
          + "cluster_key_file: " + keyFile + "\n"
          + (tlsYaml == null ? "" : tlsYaml.replace("NODE", "node" + i));
      Files.writeString(file, yaml, StandardCharsets.UTF_8);
      written.add(file);
      out.println("wrote " + file);
    }
    return written;
  }

  @Command(name = "init", description = "Write one YAML config per replica into DIR.", mixinStandardHelpOptions = true)
  static final class Init implements Callable<Integer> {
    @CommandLine.Spec CommandLine.Model.CommandSpec spec;
    @CommandLine.Mixin Layout layout = new Layout();

    @Option(names = "--force", description = "Overwrite existing configs.")
    boolean force;

    @Override
    public Integer call() throws IOException {
      try {
        List<Path> files = writeConfigs(layout, force, spec.commandLine().getOut());
        String flags = LocalTls.clientFlags(files.get(0));
        if (flags != null) {
          spec.commandLine().getOut().println("TLS is on: connect with " + flags);
        }
        return Choir.EXIT_OK;
      } catch (IllegalArgumentException e) {
        spec.commandLine().getErr().println("choir cluster init: " + e.getMessage());
        return Choir.EXIT_USAGE;
      }
    }
  }

  @Command(name = "up", description = "Start every replica of DIR in the foreground (init first when"
      + " DIR has no configs); Ctrl-C stops them cleanly. The replicas' JVM options come from"
      + " $CHOIR_SERVER_JAVA_OPTS (default -XX:+UseG1GC).", mixinStandardHelpOptions = true)
  static final class Up implements Callable<Integer> {
    @CommandLine.Spec CommandLine.Model.CommandSpec spec;
    @CommandLine.Mixin Layout layout = new Layout();

    @Override
    public Integer call() throws Exception {
      PrintWriter out = spec.commandLine().getOut();
      List<Path> files = configs(layout.dir);
      if (files.isEmpty()) {
        try {
          files = writeConfigs(layout, false, out);
        } catch (IllegalArgumentException e) {
          spec.commandLine().getErr().println("choir cluster up: " + e.getMessage());
          return Choir.EXIT_USAGE;
        }
      }
      String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
      String classpath = System.getProperty("java.class.path");
      List<Process> children = new ArrayList<>();
      Thread stopper = new Thread(() -> stopAll(children), "choir-cluster-stop");
      Runtime.getRuntime().addShutdownHook(stopper);
      for (Path f : files) {
        String name = f.getFileName().toString().replace(".yaml", "");
        List<String> command = new ArrayList<>();
        command.add(java);
        command.addAll(serverJvmOptions(System.getenv("CHOIR_SERVER_JAVA_OPTS")));
        command.addAll(List.of("-cp", classpath, ChoirLauncher.class.getName(), "server", "--config", f.toString()));
        ProcessBuilder pb = new ProcessBuilder(command).redirectErrorStream(true);
        Process p = pb.start();
        children.add(p);
        Thread pump = new Thread(() -> prefix(name, p, out), "choir-cluster-" + name);
        pump.setDaemon(true);
        pump.start();
        out.println("started " + name + " (pid " + p.pid() + ", config " + f + ")");
      }
      out.println("cluster up: " + children.size() + " replica(s); endpoints "
          + String.join(",", endpoints(files)) + "; Ctrl-C stops them");
      String flags = LocalTls.clientFlags(files.get(0));
      if (flags != null) {
        out.println("TLS is on: connect with " + flags);
      }
      out.flush();
      int failed = 0;
      for (Process p : children) {
        if (p.waitFor() != 0) {
          failed++;
        }
      }
      return failed == 0 ? Choir.EXIT_OK : Choir.EXIT_ERROR;
    }

    private static List<String> endpoints(List<Path> files) throws IOException {
      List<String> out = new ArrayList<>();
      for (Path f : files) {
        int id = Integer.parseInt(f.getFileName().toString().replaceAll("\\D", ""));
        List<String> lines = Files.readAllLines(f);
        for (int i = 0; i < lines.size(); i++) {
          if (lines.get(i).trim().equals("- id: " + id) && i + 1 < lines.size()) {
            out.add(lines.get(i + 1).trim().replace("client: ", ""));
          }
        }
      }
      return out;
    }

    /**
     * serverJvmOptions are the replicas' JVM options: {@code CHOIR_SERVER_JAVA_OPTS} split on blanks, or
     * {@code -XX:+UseG1GC} when it is unset or blank.
     */
    static List<String> serverJvmOptions(String env) {
      if (env == null || env.isBlank()) {
        return List.of("-XX:+UseG1GC");
      }
      return List.of(env.trim().split("\\s+"));
    }

    private static void prefix(String name, Process p, PrintWriter out) {
      try (BufferedReader r = new BufferedReader(
          new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
        String line;
        while ((line = r.readLine()) != null) {
          synchronized (out) {
            out.println("[" + name + "] " + line);
            out.flush();
          }
        }
      } catch (IOException ignored) {
        // the child is gone
      }
    }

    /** SIGTERM to every child (graceful shutdown), then SIGKILL to any still alive after 10 s. */
    private static void stopAll(List<Process> children) {
      for (Process p : children) {
        p.destroy();
      }
      for (Process p : children) {
        try {
          if (!p.waitFor(10, TimeUnit.SECONDS)) {
            p.destroyForcibly();
          }
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
        }
      }
    }
  }
}
