package io.choir.jepsen;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentSkipListMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * DataDisks gives every replica a small file system of its own as its data folder, so that the
 * {@code disk-full} nemesis can fill one replica's disk without touching the machine's.
 *
 * <p>Each disk is a sparse image file with an ext2 file system, loop-mounted on the host under
 * {@code <root>/<run id>/<node>} and bind-mounted as the container's {@link NodeSpec#DATA_DIR}. It lives
 * on the host, so a replica's data survives a kill and restart of its container (a tmpfs inside the
 * container would not), and the harness fills and frees it from the host even while the replica is down.
 *
 * <p>Why ext2 and not a tmpfs: RocksDB preallocates its write-ahead log with fallocate (1.1 times the
 * write buffer, 35 MiB with the server's 32 MiB memtables) and on a tmpfs or ext4 that reserves real
 * blocks. A replica whose WAL was preallocated before the disk filled keeps appending into the reserved
 * room, so a full tmpfs goes unnoticed for the whole fault (measured: 20 fsynced puts after a fill, no
 * error). ext2 has no fallocate, RocksDB ignores the failed preallocation, and the next log write after
 * the fill meets ENOSPC, which is the case worth testing.
 *
 * <p>Mounting needs root (the harness runs as root on these machines); without it the cluster falls back
 * to the image's volume and {@code disk-full} cannot start. A run removes its disks in
 * {@link #close()}; disks of runs whose JVM is gone are removed by {@link #removeStale} (called by
 * {@link Docker#removeStale} after the containers that used them are gone).
 */
public final class DataDisks implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(DataDisks.class);

  /** ROOT holds one folder per run: the images, the mount points and the owner's pid. */
  public static final Path ROOT = Path.of(System.getProperty("choir.jepsen.disks", "/tmp/choir-jepsen-disks"));
  /** FILLER is the file the disk-full nemesis writes in the disk's root (not a RocksDB file name). */
  public static final String FILLER = "jepsen-filler";
  /** OWNER is the file with the pid of the JVM that owns a run's disks. */
  static final String OWNER = "owner.pid";
  private static final long COMMAND_TIMEOUT_SECONDS = 30;

  private final Path dir;
  private final Map<String, Path> mounts; // node name -> mount point (a joiner's added while the run goes)
  private final long bytes;
  private final AtomicBoolean closed = new AtomicBoolean();
  /** Ctrl-C or a kill of the JVM: unmount now rather than at the next run's start. */
  private final Thread hook;

  private DataDisks(Path dir, Map<String, Path> mounts, long bytes) {
    this.dir = dir;
    this.mounts = mounts;
    this.bytes = bytes;
    this.hook = new Thread(() -> removeDir(dir), "jepsen-disks-cleanup");
  }

  /**
   * create makes and mounts one disk of {@code megabytes} MiB per node, or says why it could not (not
   * root, no loop device, no mkfs.ext2): then nothing is left behind.
   */
  public static Optional<DataDisks> create(String runId, List<String> nodes, long megabytes) {
    if (megabytes <= 0) {
      return Optional.empty();
    }
    Path dir = ROOT.resolve(runId);
    Map<String, Path> mounts = new ConcurrentSkipListMap<>();
    DataDisks disks = new DataDisks(dir, mounts, megabytes << 20);
    Runtime.getRuntime().addShutdownHook(disks.hook);
    try {
      Files.createDirectories(dir);
      Files.writeString(dir.resolve(OWNER), Long.toString(ProcessHandle.current().pid()));
      for (String node : nodes) {
        disks.mount(node);
      }
      log.info("data disks: {} MiB ext2 per node under {}", megabytes, dir);
      return Optional.of(disks);
    } catch (IOException | RuntimeException e) {
      log.warn("no data disks (disk-full cannot run; replicas use the image's volume): {}", e.toString());
      disks.close();
      return Optional.empty();
    }
  }

  /**
   * add makes and mounts the disk of a replica that joins later ({@code member-replace}); returns its
   * folder on the host.
   */
  public synchronized Path add(String node) throws IOException {
    if (closed.get()) {
      throw new IllegalStateException("the data disks are closed");
    }
    if (mounts.containsKey(node)) {
      throw new IllegalArgumentException("there is a data disk for " + node + " already");
    }
    return mount(node);
  }

  private Path mount(String node) throws IOException {
    Path image = dir.resolve(node + ".img");
    Path mount = dir.resolve(node);
    Files.createDirectories(mount);
    try (var f = Files.newByteChannel(image, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
      f.position(bytes - 1).write(ByteBuffer.wrap(new byte[1])); // sparse
    }
    run(mkfsCommand(image, node));
    run(mountCommand(image, mount));
    mounts.put(node, mount);
    return mount;
  }

  /** mkfsCommand makes an ext2 file system without root-reserved blocks in {@code image}. */
  static List<String> mkfsCommand(Path image, String label) {
    return List.of(tool("mkfs.ext2"), "-q", "-F", "-m", "0", "-L", "choir-" + label, image.toString());
  }

  /** mountCommand loop-mounts {@code image} on {@code dir} (the loop device detaches at unmount). */
  static List<String> mountCommand(Path image, Path dir) {
    return List.of("mount", "-t", "ext2", "-o", "loop", image.toString(), dir.toString());
  }

  /** hostPath is the folder on the host that is {@code node}'s data folder. */
  public Path hostPath(String node) {
    Path p = mounts.get(node);
    if (p == null) {
      throw new IllegalArgumentException("no data disk for " + node);
    }
    return p;
  }

  /** bytes is each disk's size. */
  public long bytes() {
    return bytes;
  }

  /** freeBytes is the room left on {@code node}'s disk. */
  public long freeBytes(String node) throws IOException {
    return Files.getFileStore(hostPath(node)).getUsableSpace();
  }

  /**
   * fill writes {@link #FILLER} on {@code node}'s disk until the file system refuses (ENOSPC), in ever
   * smaller pieces so that not even a block is left; never more than the disk's size. Returns the bytes
   * written.
   */
  public long fill(String node) {
    return fill(hostPath(node).resolve(FILLER), bytes);
  }

  /** fill appends zeros to {@code file} until a write fails or {@code limit} bytes are written. */
  static long fill(Path file, long limit) {
    long written = 0;
    try (OutputStream out = Files.newOutputStream(file, StandardOpenOption.CREATE, StandardOpenOption.APPEND)) {
      for (int chunk : new int[] {1 << 20, 1 << 12, 1 << 10}) {
        byte[] zeros = new byte[chunk];
        try {
          while (written + chunk <= limit) {
            out.write(zeros);
            written += chunk;
          }
        } catch (IOException full) {
          // ENOSPC: go on with smaller pieces
        }
      }
    } catch (IOException e) {
      // the close may fail too on a full disk: what was written stays
    }
    return written;
  }

  /** free deletes the filler of {@code node}; returns its size (0 when there was none). */
  public long free(String node) throws IOException {
    Path f = hostPath(node).resolve(FILLER);
    long size = Files.exists(f) ? Files.size(f) : 0;
    Files.deleteIfExists(f);
    return size;
  }

  /** freeAll deletes every node's filler (the final heal); returns the nodes that had one. */
  public List<String> freeAll() {
    List<String> freed = new ArrayList<>();
    for (String node : mounts.keySet()) {
      try {
        if (free(node) > 0) {
          freed.add(node);
        }
      } catch (IOException e) {
        log.warn("could not free the disk of {}: {}", node, e.toString());
      }
    }
    return freed;
  }

  /**
   * close unmounts every disk and deletes the run's folder (call it after the containers are gone; a
   * disk still bind-mounted in a container is detached lazily and goes when the container goes).
   */
  @Override
  public void close() {
    if (!closed.compareAndSet(false, true)) {
      return;
    }
    try {
      Runtime.getRuntime().removeShutdownHook(hook);
    } catch (IllegalStateException e) {
      return; // shutting down: the hook does it
    }
    removeDir(dir);
  }

  /**
   * removeStale removes the disks of runs whose JVM is gone (or of every run with {@code all}); returns
   * how many run folders it removed.
   */
  public static int removeStale(boolean all) {
    if (!Files.isDirectory(ROOT)) {
      return 0;
    }
    int removed = 0;
    try (Stream<Path> runs = Files.list(ROOT)) {
      for (Path run : runs.filter(Files::isDirectory).toList()) {
        if (!all && ownerAlive(run)) {
          continue;
        }
        removeDir(run);
        removed++;
      }
    } catch (IOException e) {
      log.warn("listing {}: {}", ROOT, e.toString());
    }
    if (removed > 0) {
      log.info("removed the data disks of {} finished run(s) under {}", removed, ROOT);
    }
    return removed;
  }

  private static boolean ownerAlive(Path run) {
    try {
      long pid = Long.parseLong(Files.readString(run.resolve(OWNER)).trim());
      return pid == ProcessHandle.current().pid() || ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false);
    } catch (IOException | NumberFormatException e) {
      return false;
    }
  }

  /** removeDir unmounts whatever is mounted under {@code dir} (deepest first), then deletes it. */
  private static void removeDir(Path dir) {
    try {
      List<String> mounted = mountsUnder(Files.readString(Path.of("/proc/self/mountinfo")), dir);
      for (String m : mounted) {
        try {
          run(List.of("umount", m));
        } catch (RuntimeException e) {
          log.warn("umount {}: {}; detaching it lazily", m, e.getMessage());
          try {
            run(List.of("umount", "-l", m));
          } catch (RuntimeException e2) {
            log.warn("umount -l {}: {}", m, e2.getMessage());
          }
        }
      }
    } catch (IOException e) {
      log.debug("mountinfo: {}", e.toString());
    }
    if (!Files.exists(dir)) {
      return;
    }
    try (Stream<Path> walk = Files.walk(dir)) {
      for (Path p : walk.sorted(Comparator.reverseOrder()).toList()) {
        Files.deleteIfExists(p);
      }
    } catch (IOException e) {
      log.warn("could not delete {}: {}", dir, e.toString());
    }
  }

  /**
   * mountsUnder lists the mount points at or below {@code dir} in a /proc/self/mountinfo text, deepest
   * first (the fifth field is the mount point, with space, tab, newline and backslash octal-escaped).
   */
  static List<String> mountsUnder(String mountinfo, Path dir) {
    String prefix = dir.toAbsolutePath().normalize().toString();
    List<String> out = new ArrayList<>();
    for (String line : mountinfo.split("\n")) {
      String[] f = line.split(" ");
      if (f.length < 5) {
        continue;
      }
      String point = unescape(f[4]);
      if (point.equals(prefix) || point.startsWith(prefix + "/")) {
        out.add(point);
      }
    }
    out.sort(Comparator.comparingInt(String::length).reversed());
    return out;
  }

  private static String unescape(String s) {
    StringBuilder sb = new StringBuilder();
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      if (c == '\\' && i + 3 < s.length() && s.substring(i + 1, i + 4).matches("[0-7]{3}")) {
        sb.append((char) Integer.parseInt(s.substring(i + 1, i + 4), 8));
        i += 3;
      } else {
        sb.append(c);
      }
    }
    return sb.toString();
  }

  /** tool finds an administration tool that may sit in /sbin or /usr/sbin, outside a user's PATH. */
  private static String tool(String name) {
    for (String d : new String[] {"/usr/sbin", "/sbin", "/usr/bin", "/bin"}) {
      if (Files.isExecutable(Path.of(d, name))) {
        return d + "/" + name;
      }
    }
    return name;
  }

  private static void run(List<String> cmd) {
    try {
      Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
      if (!p.waitFor(COMMAND_TIMEOUT_SECONDS, TimeUnit.SECONDS)) {
        p.destroyForcibly();
        throw new IllegalStateException(String.join(" ", cmd) + " did not finish in " + COMMAND_TIMEOUT_SECONDS + " s");
      }
      String output = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
      if (p.exitValue() != 0) {
        throw new IllegalStateException(String.join(" ", cmd) + " exited " + p.exitValue() + ": " + output);
      }
    } catch (IOException e) {
      throw new IllegalStateException("cannot run " + String.join(" ", cmd) + ": " + e.getMessage(), e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted: " + String.join(" ", cmd), e);
    }
  }
}
