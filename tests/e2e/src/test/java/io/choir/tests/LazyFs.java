package io.choir.tests;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * LazyFs mounts {@code tests/e2e/lazyfs/lazyfs.py}, a pass-through FUSE filesystem that keeps every
 * unsynced write in memory until an fsync of its file, and drops them all on {@link #drop()}: a process
 * killed with SIGKILL and then a drop is a power loss (what survives is exactly what was fsynced; the
 * script's docstring states the semantics and its limits: metadata is durable at once).
 *
 * <p>It needs Linux, root, {@code /dev/fuse}, and Debian's {@code python3-fusepy} under
 * {@code /usr/bin/python3} (installed by {@code deploy/bin/install-prereqs}); {@link #unavailable()}
 * says what is missing. {@link #close()} unmounts, also after a failure, and fails if the mount is still
 * there afterwards; the filesystem also unmounts itself when this JVM dies (it watches its standard
 * input, whose pipe this JVM holds), so no test leaves a mount behind.
 */
final class LazyFs implements AutoCloseable {
  /** Debian's python, where python3-fusepy lives (the python3 first on PATH may be another build). */
  private static final String PYTHON = System.getProperty("lazyfs.python", "/usr/bin/python3");
  private static Optional<String> unavailable;
  private static final ObjectMapper JSON = new ObjectMapper();

  private final Path mountPoint;
  private final Path control;
  private final Path logFile;
  private final Process process;
  private final OutputStream stdin;

  private LazyFs(Path mountPoint, Path control, Path logFile, Process process) {
    this.mountPoint = mountPoint;
    this.control = control;
    this.logFile = logFile;
    this.process = process;
    this.stdin = process.getOutputStream();
  }

  /** Where lazyfs.py is: tests/e2e/lazyfs, found from the module's folder (Surefire's basedir). */
  static Path script() {
    return Path.of(System.getProperty("basedir", "."), "lazyfs", "lazyfs.py").toAbsolutePath().normalize();
  }

  /**
   * Why this machine cannot mount the filesystem, or empty when it can. In CI (environment CI=true) a
   * missing python3-fusepy is not a reason but a failure: install-prereqs must have installed it.
   */
  static synchronized Optional<String> unavailable() {
    if (unavailable == null) {
      unavailable = probe();
    }
    return unavailable;
  }

  private static Optional<String> probe() {
    if (!System.getProperty("os.name", "").toLowerCase(Locale.ROOT).contains("linux")) {
      return Optional.of("FUSE power-loss tests need Linux; this is " + System.getProperty("os.name"));
    }
    Path fuse = Path.of("/dev/fuse");
    if (!Files.exists(fuse) || !Files.isReadable(fuse) || !Files.isWritable(fuse)) {
      return Optional.of("no usable /dev/fuse on this machine (the kernel's FUSE device): cannot mount");
    }
    if (!isRoot()) {
      return Optional.of("not root: mounting the FUSE filesystem needs root here");
    }
    String missing = null;
    if (!Files.isExecutable(Path.of(PYTHON))) {
      missing = PYTHON + " is missing";
    } else {
      try {
        Process p = new ProcessBuilder(PYTHON, "-c", "import fusepy").redirectErrorStream(true).start();
        p.getOutputStream().close();
        boolean done = p.waitFor(20, TimeUnit.SECONDS);
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
        if (!done) {
          p.destroyForcibly();
          missing = "'" + PYTHON + " -c \"import fusepy\"' did not finish in 20 s";
        } else if (p.exitValue() != 0) {
          missing = "Debian's python3-fusepy is not importable by " + PYTHON + ": " + out;
        }
      } catch (IOException e) {
        missing = "cannot run " + PYTHON + ": " + e.getMessage();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        missing = "interrupted";
      }
    }
    if (missing != null) {
      if ("true".equals(System.getenv("CI"))) {
        throw new IllegalStateException(missing + " (deploy/bin/install-prereqs installs python3-fusepy)");
      }
      return Optional.of(missing + " (apt-get install python3-fusepy, or run deploy/bin/install-prereqs)");
    }
    return Optional.empty();
  }

  private static boolean isRoot() {
    try {
      for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
        if (line.startsWith("Uid:")) {
          return line.split("\\s+")[1].equals("0");
        }
      }
    } catch (IOException e) {
      return false;
    }
    return false;
  }

  /**
   * Mounts a LazyFs of backing (created if absent) on mountPoint (created, must be empty) and waits up to
   * 20 s until it serves; its control socket and its log go into the folder work.
   */
  static LazyFs mount(Path backing, Path mountPoint, Path work, String... extraArgs)
      throws IOException, InterruptedException {
    Files.createDirectories(backing);
    Files.createDirectories(mountPoint);
    Files.createDirectories(work);
    Path control = work.resolve(mountPoint.getFileName() + ".ctl");
    Path log = work.resolve(mountPoint.getFileName() + ".lazyfs.log");
    List<String> cmd = new ArrayList<>(List.of(PYTHON, script().toString(), "--backing", backing.toString(),
        "--mount", mountPoint.toString(), "--control", control.toString()));
    cmd.addAll(List.of(extraArgs));
    Process p = new ProcessBuilder(cmd).redirectErrorStream(true)
        .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile())).start();
    // the real path: /proc/self/mountinfo lists the mount under it, even if the temp folder is a symlink
    LazyFs fs = new LazyFs(mountPoint.toRealPath(), control, log, p);
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
    String last = "no answer yet";
    while (System.nanoTime() < deadline) {
      if (!p.isAlive()) {
        fs.close();
        throw new IllegalStateException("lazyfs exited with " + p.exitValue() + " before mounting " + mountPoint
            + ": " + fs.logTail());
      }
      if (Files.exists(control)) {
        try {
          Map<String, Long> s = fs.stats();
          if (s.get("mounted") == 1 && fs.isMounted()) {
            return fs;
          }
          last = "answered " + s + ", mounted in /proc/self/mountinfo: " + fs.isMounted();
        } catch (IOException e) {
          last = e.toString();
        }
      }
      TimeUnit.MILLISECONDS.sleep(20); // polling the mount table: the mount gives no event to wait on
    }
    fs.close();
    throw new IllegalStateException("lazyfs did not mount " + mountPoint + " in 20 s (" + last + "): " + fs.logTail());
  }

  Path mountPoint() {
    return mountPoint;
  }

  /** The counters (see lazyfs.py: writes, fsyncs, fdatasyncs, bytes_synced, pending_bytes, open_handles...). */
  Map<String, Long> stats() throws IOException {
    return numbers(command("stats"));
  }

  /** What one drop found: the counters after it (with last_drop_bytes) and the bytes each file lost. */
  record Drop(Map<String, Long> stats, Map<String, Long> bytesByPath) {
    long bytes() {
      return stats.get("last_drop_bytes");
    }
  }

  /** The power loss: every write that no fsync covered is gone. */
  Drop drop() throws IOException {
    JsonNode answer = command("drop");
    return new Drop(numbers(answer), numbers(answer.path("last_drop_paths")));
  }

  /** Waits until no file is open on the mount, so that no write of a dead process is still in flight. */
  Map<String, Long> awaitNoOpenHandles(Duration timeout) throws IOException, InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    Map<String, Long> s = stats();
    while (s.get("open_handles") != 0) {
      if (System.nanoTime() > deadline) {
        throw new IllegalStateException("files still open on " + mountPoint + " after " + timeout + ": " + s);
      }
      TimeUnit.MILLISECONDS.sleep(10); // the kernel releases a dead process's files asynchronously
      s = stats();
    }
    return s;
  }

  /** Sends one command over the control socket and parses its one-line JSON answer (10 s at most). */
  private JsonNode command(String cmd) throws IOException {
    CompletableFuture<String> answer = CompletableFuture.supplyAsync(() -> {
      try (SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX)) {
        ch.connect(UnixDomainSocketAddress.of(control));
        ch.write(ByteBuffer.wrap((cmd + "\n").getBytes(StandardCharsets.UTF_8)));
        ByteBuffer buf = ByteBuffer.allocate(1 << 16);
        while (buf.position() == 0 || buf.get(buf.position() - 1) != '\n') {
          if (ch.read(buf) < 0 || !buf.hasRemaining()) {
            break;
          }
        }
        return new String(buf.array(), 0, buf.position(), StandardCharsets.UTF_8);
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    });
    String line;
    try {
      line = answer.get(10, TimeUnit.SECONDS);
    } catch (TimeoutException e) {
      answer.cancel(true);
      throw new IOException("lazyfs at " + mountPoint + " did not answer '" + cmd + "' in 10 s");
    } catch (ExecutionException e) {
      throw new IOException("lazyfs control '" + cmd + "' failed: " + e.getCause(), e.getCause());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IOException("interrupted", e);
    }
    JsonNode node = JSON.readTree(line);
    if (node == null || node.has("error")) {
      throw new IOException("lazyfs control '" + cmd + "': " + line);
    }
    return node;
  }

  /** The numeric and boolean fields of a JSON object (true is 1). */
  private static Map<String, Long> numbers(JsonNode node) {
    Map<String, Long> out = new LinkedHashMap<>();
    for (Iterator<Map.Entry<String, JsonNode>> it = node.fields(); it.hasNext(); ) {
      Map.Entry<String, JsonNode> e = it.next();
      if (e.getValue().isBoolean()) {
        out.put(e.getKey(), e.getValue().asBoolean() ? 1L : 0L);
      } else if (e.getValue().isNumber()) {
        out.put(e.getKey(), e.getValue().asLong());
      }
    }
    return out;
  }

  /** Whether /proc/self/mountinfo lists the mount point. */
  boolean isMounted() throws IOException {
    return mounted(mountPoint);
  }

  static boolean mounted(Path mountPoint) throws IOException {
    String target = mountPoint.toAbsolutePath().normalize().toString();
    for (String line : Files.readAllLines(Path.of("/proc/self/mountinfo"))) {
      String[] f = line.split(" ");
      if (f.length > 4 && f[4].replace("\\040", " ").equals(target)) {
        return true;
      }
    }
    return false;
  }

  String logTail() {
    try {
      List<String> lines = Files.exists(logFile) ? Files.readAllLines(logFile) : List.of();
      return String.join("\n", lines.subList(Math.max(0, lines.size() - 20), lines.size()));
    } catch (IOException e) {
      return "(log unreadable: " + e + ")";
    }
  }

  /**
   * Unmounts: umount, then a lazy umount if the mount is busy, then ends the filesystem's process; fails
   * if the mount is still there afterwards.
   */
  @Override
  public void close() throws IOException, InterruptedException {
    List<String> tried = new ArrayList<>();
    if (isMounted() && run(tried, "umount", mountPoint.toString()) != 0) {
      run(tried, "umount", "-l", mountPoint.toString());
    }
    try {
      stdin.close(); // the filesystem's own watchdog: end of input means unmount and exit
    } catch (IOException ignored) {
      // it has exited already
    }
    if (!process.waitFor(10, TimeUnit.SECONDS)) {
      process.destroyForcibly();
      process.waitFor(10, TimeUnit.SECONDS);
    }
    if (isMounted()) { // a killed filesystem leaves a dead mount ("transport endpoint is not connected")
      run(tried, "umount", "-l", mountPoint.toString());
    }
    if (isMounted()) {
      throw new IllegalStateException("could not unmount " + mountPoint + " (tried " + tried + ")");
    }
  }

  private static int run(List<String> tried, String... cmd) throws IOException, InterruptedException {
    Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
    p.getOutputStream().close();
    if (!p.waitFor(20, TimeUnit.SECONDS)) {
      p.destroyForcibly();
      tried.add(String.join(" ", cmd) + ": timed out");
      return -1;
    }
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
    tried.add(String.join(" ", cmd) + ": " + p.exitValue() + (out.isEmpty() ? "" : " " + out));
    return p.exitValue();
  }
}
