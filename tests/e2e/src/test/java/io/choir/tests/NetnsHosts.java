package io.choir.tests;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * NetnsHosts makes several "hosts" on this machine with deploy/bin/netns-hosts: network namespaces
 * P-1..P-N, each with an Ethernet-like interface ch0 (10.213.K.i/24, multicast on) on a private bridge,
 * reachable from this JVM through 10.213.K.254. Nothing leaves them: no route but the /24, and an
 * nftables output filter in each host that drops and counts everything but lo, the /24 and multicast
 * (see docs/netns.md).
 *
 * <p>Several JVMs may run such tests at once, so each set of hosts gets its own K (and prefix "ce" + K),
 * reserved by an OS file lock under java.io.tmpdir (released when the JVM ends, even by kill -9);
 * what a killed JVM left behind under that K is removed before it is used again. close() and a JVM
 * shutdown hook remove the namespaces.
 */
final class NetnsHosts implements AutoCloseable {
  private static final Path LOCKS = Path.of(System.getProperty("java.io.tmpdir"), "choir-e2e-netns");
  /** Ks 1..199 are the tests'; 0 is the script's default for hand use, 200.. the benchmark's. */
  private static final int FIRST_NET = 1;
  private static final int NETS = 199;

  private final Path script;
  private final int size;
  private final int net;
  private final String prefix;
  private final FileChannel lockFile;
  private final Thread hook;
  private boolean up;

  private NetnsHosts(Path script, int size, int net, FileChannel lockFile) {
    this.script = script;
    this.size = size;
    this.net = net;
    this.prefix = "ce" + net;
    this.lockFile = lockFile;
    this.hook = new Thread(this::down, "netns-hosts-down-" + prefix);
  }

  /**
   * Why namespaced hosts cannot be made here (not root, no `ip netns`, no nft, no script), or empty
   * when they can: tests pass the reason to an assumption, so they skip with it.
   */
  static Optional<String> unavailable() {
    try {
      String status = Files.readString(Path.of("/proc/self/status"));
      Matcher uid = Pattern.compile("(?m)^Uid:\\s+(\\d+)").matcher(status);
      if (!uid.find() || !uid.group(1).equals("0")) {
        return Optional.of("network namespace tests need root (ip netns, veth, nftables); skipped");
      }
      if (run(List.of("ip", "netns", "list"), false).code != 0) {
        return Optional.of("`ip netns` is not available (iproute2); skipped");
      }
      if (run(List.of("nft", "list", "tables"), false).code != 0) {
        return Optional.of("nft (nftables) is not available; skipped");
      }
      if (script() == null) {
        return Optional.of("deploy/bin/netns-hosts not found above " + System.getProperty("user.dir") + "; skipped");
      }
      return Optional.empty();
    } catch (IOException e) {
      return Optional.of("cannot check for network namespaces (" + e.getMessage() + "); skipped");
    }
  }

  /** The script, searched upward from the working folder (tests/e2e under Maven), or null. */
  private static Path script() {
    for (Path d = Path.of(System.getProperty("user.dir")).toAbsolutePath(); d != null; d = d.getParent()) {
      Path s = d.resolve("deploy/bin/netns-hosts");
      if (Files.isExecutable(s)) {
        return s;
      }
    }
    return null;
  }

  /** Makes size hosts on a free K; the caller closes them (a shutdown hook also does). */
  static NetnsHosts up(int size) throws IOException {
    Path script = script();
    if (script == null) {
      throw new IllegalStateException("deploy/bin/netns-hosts not found");
    }
    Files.createDirectories(LOCKS);
    SplittableRandom random = new SplittableRandom(System.nanoTime() ^ ProcessHandle.current().pid());
    String lastFailure = "";
    for (int attempt = 0; attempt < 3 * NETS; attempt++) {
      int k = FIRST_NET + random.nextInt(NETS);
      FileChannel ch = FileChannel.open(LOCKS.resolve(k + ".lock"), StandardOpenOption.CREATE, StandardOpenOption.WRITE);
      FileLock lock;
      try {
        lock = ch.tryLock();
      } catch (OverlappingFileLockException sameJvm) {
        lock = null;
      }
      if (lock == null) {
        ch.close();
        continue;
      }
      NetnsHosts hosts = new NetnsHosts(script, size, k, ch);
      hosts.down(); // what a killed JVM of the same K left behind, if anything
      Result r = run(List.of(script.toString(), "up", String.valueOf(size), "--prefix", hosts.prefix, "--net",
          String.valueOf(k)), false);
      if (r.code == 0) {
        hosts.up = true;
        Runtime.getRuntime().addShutdownHook(hosts.hook);
        return hosts;
      }
      lastFailure = r.output;
      ch.close(); // K is taken by something that does not lock (the benchmark, a hand run): another one
    }
    throw new IllegalStateException("no free 10.213.K.0/24 for network namespace hosts: " + lastFailure);
  }

  int size() {
    return size;
  }

  /** The namespaces' prefix ("ce" + K). */
  String prefix() {
    return prefix;
  }

  /** Host i's namespace name. */
  String namespace(int i) {
    return prefix + "-" + i;
  }

  /** Host i's address on its ch0. */
  String address(int i) {
    return "10.213." + net + "." + i;
  }

  /** The interface of every host (the multicast_interface of its replica). */
  static String hostInterface() {
    return "ch0";
  }

  /** The command prefix that runs a command inside host i (ip netns exec execs it in place). */
  List<String> execPrefix(int i) {
    return List.of("ip", "netns", "exec", namespace(i));
  }

  /** Drops pct% of the multicast datagrams host i receives (nft numgen). */
  void multicastLoss(int i, int pct) throws IOException {
    script("fault", String.valueOf(i), "loss", String.valueOf(pct), "multicast");
  }

  /** Cuts host i off from every other host and from multicast; the root side (this JVM) still reaches it. */
  void isolate(int i) throws IOException {
    script("fault", String.valueOf(i), "isolate");
  }

  /** Drops all traffic between hosts i and j. */
  void partition(int i, int j) throws IOException {
    script("fault", String.valueOf(i), "partition", String.valueOf(j));
  }

  /** Removes every fault of host i. */
  void heal(int i) throws IOException {
    script("heal", String.valueOf(i));
  }

  /** Packets of host i's named nftables counter: mcast_in, mcast_out (UDP multicast on ch0) or leaked. */
  long counter(int i, String name) throws IOException {
    Result r = run(List.of("ip", "netns", "exec", namespace(i), "nft", "list", "counter", "inet", "choir_netns",
        name), true);
    Matcher m = Pattern.compile("packets (\\d+)").matcher(r.output);
    if (!m.find()) {
      throw new IOException("no counter " + name + " in " + namespace(i) + ": " + r.output);
    }
    return Long.parseLong(m.group(1));
  }

  /** Packets dropped by host i's faults (every counter of its fault chains). */
  long faultDrops(int i) throws IOException {
    long n = 0;
    for (String chain : List.of("faults_in", "faults_out")) {
      Result r = run(List.of("ip", "netns", "exec", namespace(i), "nft", "list", "chain", "inet", "choir_netns",
          chain), true);
      Matcher m = Pattern.compile("counter packets (\\d+)").matcher(r.output);
      while (m.find()) {
        n += Long.parseLong(m.group(1));
      }
    }
    return n;
  }

  /** A counter of ch0 in host i (/sys/class/net/ch0/statistics/NAME, e.g. tx_packets). */
  long interfaceCounter(int i, String name) throws IOException {
    return statistic(i, hostInterface(), name);
  }

  /** A counter of lo in host i (/sys/class/net/lo/statistics/NAME). */
  long loopbackCounter(int i, String name) throws IOException {
    return statistic(i, "lo", name);
  }

  private long statistic(int i, String ifname, String name) throws IOException {
    Result r = run(List.of("ip", "netns", "exec", namespace(i), "cat",
        "/sys/class/net/" + ifname + "/statistics/" + name), true);
    return Long.parseLong(r.output.trim());
  }

  /** The script's status table (counters of every host). */
  String status() throws IOException {
    return script("status");
  }

  private String script(String... args) throws IOException {
    List<String> cmd = new ArrayList<>(List.of(script.toString()));
    cmd.addAll(List.of(args));
    cmd.addAll(List.of("--prefix", prefix));
    return run(cmd, true).output;
  }

  /** Removes the namespaces (idempotent; no exception: it also runs from the shutdown hook). */
  private void down() {
    try {
      Result r = run(List.of(script.toString(), "down", "--prefix", prefix, "--net", String.valueOf(net)), false);
      if (r.code != 0) {
        System.out.println("netns-hosts down --prefix " + prefix + " failed: " + r.output);
      }
    } catch (IOException e) {
      System.out.println("netns-hosts down --prefix " + prefix + " failed: " + e);
    }
  }

  @Override
  public void close() {
    if (up) {
      up = false;
      down();
      try {
        Runtime.getRuntime().removeShutdownHook(hook);
      } catch (IllegalStateException shuttingDown) {
        // the hook runs (or ran) anyway; down is idempotent
      }
    }
    try {
      lockFile.close();
    } catch (IOException ignored) {
      // the lock goes with the JVM anyway
    }
  }

  private record Result(int code, String output) {}

  private static Result run(List<String> cmd, boolean mustSucceed) throws IOException {
    Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    try {
      if (!p.waitFor(30, TimeUnit.SECONDS)) {
        p.destroyForcibly();
        throw new IOException(String.join(" ", cmd) + " did not finish in 30 s");
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IOException("interrupted: " + String.join(" ", cmd), e);
    }
    if (mustSucceed && p.exitValue() != 0) {
      throw new IOException(String.join(" ", cmd) + " failed (" + p.exitValue() + "): " + out);
    }
    return new Result(p.exitValue(), out);
  }
}
