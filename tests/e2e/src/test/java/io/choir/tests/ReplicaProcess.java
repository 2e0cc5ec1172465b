package io.choir.tests;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * ReplicaProcess runs `choir server --config FILE` as a real child process (the test JVM's classpath has
 * every module), so tests can kill it with SIGKILL and restart it from the same data folder. A command
 * prefix (e.g. `ip netns exec NS`, which execs the JVM in place, so the pid stays the JVM's) runs it
 * elsewhere; its client port is then probed at its own host.
 */
final class ReplicaProcess implements AutoCloseable {
  private final Path config;
  private final Path logFile;
  private final String host;
  private final int clientPort;
  private final List<String> jvmOptions;
  private final List<String> commandPrefix;
  private Process process;

  ReplicaProcess(Path config, Path logFile, int clientPort) {
    this(config, logFile, clientPort, List.of("-Xmx512m"));
  }

  /** A replica whose JVM gets jvmOptions (e.g. a larger -Xmx for a window of large values). */
  ReplicaProcess(Path config, Path logFile, int clientPort, List<String> jvmOptions) {
    this(config, logFile, "127.0.0.1", clientPort, jvmOptions, List.of());
  }

  /**
   * A replica started as commandPrefix followed by the java command (a prefix must exec the JVM in
   * place, as `ip netns exec NS` does, so that pid(), kill and pause reach the JVM), whose client port
   * is host:clientPort.
   */
  ReplicaProcess(Path config, Path logFile, String host, int clientPort, List<String> jvmOptions,
      List<String> commandPrefix) {
    this.config = config;
    this.logFile = logFile;
    this.host = host;
    this.clientPort = clientPort;
    this.jvmOptions = List.copyOf(jvmOptions);
    this.commandPrefix = List.copyOf(commandPrefix);
  }

  /** Starts the process and waits (up to 30 s) until its client port accepts connections. */
  void start() throws IOException, InterruptedException {
    launch();
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    while (System.nanoTime() < deadline) {
      if (!process.isAlive()) {
        throw new IllegalStateException("replica exited with " + process.exitValue() + "; see " + logFile);
      }
      try (Socket s = new Socket()) {
        s.connect(new InetSocketAddress(host, clientPort), 200);
        return;
      } catch (IOException notYet) {
        TimeUnit.MILLISECONDS.sleep(50); // polling a port that is not open yet; no event to wait on
      }
    }
    throw new IllegalStateException("replica did not open port " + host + ":" + clientPort + " in 30 s; see " + logFile);
  }

  /**
   * Starts the process and returns as soon as its log holds a line containing text (up to 30 s), for a
   * test that acts while the replica is still starting.
   */
  void startUntilLogSays(String text) throws IOException, InterruptedException {
    launch();
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    while (System.nanoTime() < deadline) {
      if (Files.exists(logFile) && Files.readString(logFile).contains(text)) {
        return;
      }
      if (!process.isAlive()) {
        throw new IllegalStateException("replica exited with " + process.exitValue() + "; see " + logFile);
      }
      TimeUnit.MILLISECONDS.sleep(5); // polling a log file; no event to wait on
    }
    throw new IllegalStateException("replica did not log '" + text + "' in 30 s; see " + logFile);
  }

  private void launch() throws IOException {
    String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
    List<String> cmd = new ArrayList<>(commandPrefix);
    cmd.add(java);
    cmd.addAll(jvmOptions);
    cmd.addAll(List.of("-cp", System.getProperty("java.class.path"),
        "io.choir.launcher.ChoirLauncher", "server", "--config", config.toString()));
    process = new ProcessBuilder(cmd).redirectErrorStream(true)
        .redirectOutput(ProcessBuilder.Redirect.appendTo(logFile.toFile())).start();
  }

  /** kill -9: no shutdown hook, no flush; only what reached the OS (or the disk) survives. */
  void kill() throws InterruptedException {
    process.destroyForcibly();
    process.waitFor(10, TimeUnit.SECONDS);
  }

  /** SIGTERM and wait for the graceful shutdown; returns the exit code. */
  int terminate() throws InterruptedException {
    process.destroy();
    if (!process.waitFor(20, TimeUnit.SECONDS)) {
      process.destroyForcibly();
      return -1;
    }
    return process.exitValue();
  }

  long pid() {
    return process.pid();
  }

  boolean isAlive() {
    return process != null && process.isAlive();
  }

  /**
   * SIGSTOP, and waits (up to 5 s) until the kernel reports the process stopped ('T' in
   * /proc/PID/stat), so the caller knows the pause is in place when this returns.
   */
  void pause() throws IOException, InterruptedException {
    signal("STOP");
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
    while (!isStopped()) {
      if (System.nanoTime() > deadline) {
        throw new IllegalStateException("replica " + pid() + " did not stop after SIGSTOP");
      }
      TimeUnit.MILLISECONDS.sleep(1); // polling /proc: the kernel gives no event for a stopped process
    }
  }

  /** SIGCONT after pause(). */
  void resume() throws IOException, InterruptedException {
    signal("CONT");
  }

  private void signal(String name) throws IOException, InterruptedException {
    Process kill = new ProcessBuilder("kill", "-" + name, String.valueOf(pid())).redirectErrorStream(true).start();
    if (!kill.waitFor(5, TimeUnit.SECONDS) || kill.exitValue() != 0) {
      throw new IllegalStateException("kill -" + name + " " + pid() + " failed");
    }
  }

  private boolean isStopped() throws IOException {
    String stat = Files.readString(Path.of("/proc", String.valueOf(pid()), "stat"));
    // The state is the first field after the command name, which is in parentheses and may hold spaces.
    char state = stat.charAt(stat.lastIndexOf(')') + 2);
    return state == 'T' || state == 't';
  }

  @Override
  public void close() {
    if (process != null && process.isAlive()) {
      process.destroyForcibly();
      try {
        process.waitFor(10, TimeUnit.SECONDS); // its ports must be free before the next test
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
  }
}
