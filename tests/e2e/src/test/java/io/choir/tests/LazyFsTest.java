package io.choir.tests;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.NonReadableChannelException;
import java.nio.channels.NonWritableChannelException;
import java.nio.file.Files;
import java.nio.file.OpenOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * LazyFsTest checks the power-loss filesystem itself against a model: random positioned writes through
 * several handles per file, reads that span synced and unsynced extents, truncation both ways, renames
 * and unlinks of open files, fsync and fdatasync through any handle; then a drop, after which every file
 * must hold exactly what its last fsync covered (and metadata, durable at once, must be as it was).
 * Seeded: the seed is printed, and {@code -Dlazyfs.seed=N} replays it.
 */
class LazyFsTest {
  @TempDir Path dir;
  private LazyFs fs;

  @BeforeEach
  void requireFuse() throws Exception {
    LazyFs.unavailable().ifPresent(why -> System.err.println("LazyFsTest SKIPPED: " + why));
    Assumptions.assumeTrue(LazyFs.unavailable().isEmpty(),
        () -> "FUSE filesystem test skipped: " + LazyFs.unavailable().orElse(""));
  }

  @AfterEach
  void unmount() throws Exception {
    if (fs != null) {
      fs.close();
    }
  }

  /** The model of one file: what readers see now, and what the backing file holds (survives a drop). */
  private static final class Model {
    byte[] visible = new byte[0];
    byte[] durable = new byte[0];
    final List<FileChannel> handles = new ArrayList<>();
  }

  private static byte[] put(byte[] a, long off, byte[] data) {
    int end = (int) off + data.length;
    byte[] out = a.length >= end ? a : Arrays.copyOf(a, end);
    System.arraycopy(data, 0, out, (int) off, data.length);
    return out;
  }

  @Test
  void shouldKeepExactlyTheFsyncedDataOfEveryFileAfterADrop() throws Exception {
    long seed = Long.getLong("lazyfs.seed", System.nanoTime());
    System.out.println("LazyFsTest seed=" + seed + " (replay with -Dlazyfs.seed=" + seed + ")");
    Random rnd = new Random(seed);
    fs = LazyFs.mount(dir.resolve("backing"), dir.resolve("mnt"), dir);
    Path mnt = fs.mountPoint();
    Map<String, Model> files = new TreeMap<>();
    int nextName = 0;
    int syncs = 0;
    long droppedBytes = 0;
    for (int round = 0; round < 5; round++) {
      for (int step = 0; step < 400; step++) {
        String context = "seed " + seed + " round " + round + " step " + step;
        int op = rnd.nextInt(100);
        if (files.isEmpty() || (op < 6 && files.size() < 6)) { // create
          String name = "f" + nextName++;
          Model m = new Model();
          m.handles.add(FileChannel.open(mnt.resolve(name), StandardOpenOption.CREATE_NEW,
              StandardOpenOption.READ, StandardOpenOption.WRITE));
          files.put(name, m);
          continue;
        }
        List<String> names = new ArrayList<>(files.keySet());
        String name = names.get(rnd.nextInt(names.size()));
        Model m = files.get(name);
        if (m.handles.isEmpty()) {
          m.handles.add(open(mnt.resolve(name), rnd));
        }
        FileChannel h = m.handles.get(rnd.nextInt(m.handles.size()));
        if (op < 45) { // positioned write: an append, an overwrite, or past the end (a hole)
          int len = 1 + rnd.nextInt(rnd.nextBoolean() ? 64 : 9000);
          long off = switch (rnd.nextInt(3)) {
            case 0 -> m.visible.length;
            case 1 -> m.visible.length == 0 ? 0 : rnd.nextInt(m.visible.length);
            default -> m.visible.length + rnd.nextInt(5000);
          };
          byte[] data = new byte[len];
          rnd.nextBytes(data);
          writeFully(writable(h, m, mnt.resolve(name)), data, off);
          m.visible = put(m.visible, off, data);
        } else if (op < 65) { // positioned read, anywhere, also past the end
          int off = rnd.nextInt(m.visible.length + 100);
          int len = 1 + rnd.nextInt(20_000);
          ByteBuffer buf = ByteBuffer.allocate(len);
          FileChannel r = readable(h, m, mnt.resolve(name));
          while (buf.hasRemaining() && r.read(buf, off + buf.position()) > 0) {
            // read until the end of the file or of the buffer
          }
          byte[] expected = off >= m.visible.length ? new byte[0]
              : Arrays.copyOfRange(m.visible, off, Math.min(m.visible.length, off + len));
          assertArrayEquals(expected, Arrays.copyOf(buf.array(), buf.position()), context + ": read " + name);
          assertEquals(m.visible.length, Files.size(mnt.resolve(name)), context + ": size of " + name);
        } else if (op < 75) { // fsync or fdatasync through any handle of the file
          h.force(rnd.nextBoolean());
          m.durable = m.visible.clone();
          syncs++;
        } else if (op < 81) { // truncate: shrinking is durable at once, growing is pending data
          int len = rnd.nextInt(m.visible.length + 3000);
          writable(h, m, mnt.resolve(name));
          truncate(mnt.resolve(name), len);
          m.visible = Arrays.copyOf(m.visible, len);
          if (len <= m.durable.length) {
            m.durable = Arrays.copyOf(m.durable, len);
          }
        } else if (op < 86) { // another handle on the same file (read-only, write-only or both)
          if (m.handles.size() < 4) {
            m.handles.add(open(mnt.resolve(name), rnd));
          }
        } else if (op < 91) { // close a handle: the page cache outlives it
          m.handles.remove(h);
          h.close();
        } else if (op < 96) { // rename, possibly over another file, while handles are open
          String target = rnd.nextBoolean() || names.size() < 2
              ? "f" + nextName++ : names.get(rnd.nextInt(names.size()));
          if (!target.equals(name)) {
            Files.move(mnt.resolve(name), mnt.resolve(target), StandardCopyOption.REPLACE_EXISTING);
            Model replaced = files.remove(target);
            if (replaced != null) {
              closeAll(replaced);
            }
            files.put(target, files.remove(name));
          }
        } else { // unlink: its pending data goes with it
          Files.delete(mnt.resolve(name));
          closeAll(files.remove(name));
        }
      }
      for (Model m : files.values()) {
        closeAll(m);
      }
      Map<String, Long> before = fs.awaitNoOpenHandles(Duration.ofSeconds(10));
      assertEquals(syncs, before.get("fsyncs") + before.get("fdatasyncs"), "every force() reached the filesystem");
      LazyFs.Drop drop = fs.drop();
      Map<String, Long> after = drop.stats();
      List<String> expectedDropped = new ArrayList<>();
      for (Map.Entry<String, Model> e : files.entrySet()) {
        Model m = e.getValue();
        assertArrayEquals(m.durable, Files.readAllBytes(mnt.resolve(e.getKey())), "seed " + seed + " round " + round
            + ": after the drop " + e.getKey() + " holds exactly what its last fsync covered");
        if (!Arrays.equals(m.visible, m.durable)) {
          expectedDropped.add(e.getKey());
        }
        m.visible = m.durable.clone();
      }
      assertEquals(new ArrayList<>(files.keySet()), listing(mnt), "metadata is durable at once: the same names");
      // containsAll, not equals: a write may rewrite a byte with its own value, unsynced yet invisible to the model
      assertTrue(drop.bytesByPath().keySet().containsAll(expectedDropped),
          "files with unsynced data " + expectedDropped + ", dropped " + drop.bytesByPath());
      assertEquals(drop.bytes(), drop.bytesByPath().values().stream().mapToLong(Long::longValue).sum());
      droppedBytes += after.get("last_drop_bytes");
    }
    System.out.println("LazyFsTest: 5 drops, " + files.size() + " files at the end, " + syncs + " syncs, "
        + droppedBytes + " unsynced bytes dropped");
  }

  @Test
  void shouldWriteBackTheLargestFileWhenPendingDataExceedsItsBound() throws Exception {
    // The bound stands for a page cache under memory pressure: it may make unsynced data durable (the
    // file with the most pending bytes is written back), never lose it.
    fs = LazyFs.mount(dir.resolve("backing"), dir.resolve("mnt"), dir, "--max-pending-bytes", String.valueOf(1 << 20));
    Path mnt = fs.mountPoint();
    Random rnd = new Random(7);
    Map<String, byte[]> written = new TreeMap<>();
    for (String name : List.of("a", "b", "c")) {
      byte[] data = new byte[(name.equals("b") ? 900 : 400) << 10];
      rnd.nextBytes(data);
      try (FileChannel ch = FileChannel.open(mnt.resolve(name), StandardOpenOption.CREATE_NEW,
          StandardOpenOption.WRITE)) {
        writeFully(ch, data, 0);
      }
      written.put(name, data);
    }
    Map<String, Long> s = fs.drop().stats();
    long survived = 0;
    long total = 0;
    for (Map.Entry<String, byte[]> e : written.entrySet()) {
      byte[] now = Files.readAllBytes(mnt.resolve(e.getKey()));
      assertArrayEquals(Arrays.copyOf(e.getValue(), now.length), now, e.getKey() + " keeps a prefix of its writes");
      survived += now.length;
      total += e.getValue().length;
    }
    assertTrue(s.get("written_back_bytes") > 0, "2.6 MiB of writes under a 1 MiB bound are partly written back: " + s);
    assertEquals(s.get("written_back_bytes"), survived, "exactly the written-back bytes survive the drop: " + s);
    assertEquals(total, survived + s.get("last_drop_bytes"), "every byte is either written back or dropped: " + s);
  }

  private static List<String> listing(Path dir) throws IOException {
    try (var s = Files.list(dir)) {
      return s.map(p -> p.getFileName().toString()).sorted().toList();
    }
  }

  private static FileChannel open(Path p, Random rnd) throws IOException {
    OpenOption[] modes = switch (rnd.nextInt(3)) {
      case 0 -> new OpenOption[] {StandardOpenOption.READ};
      case 1 -> new OpenOption[] {StandardOpenOption.WRITE};
      default -> new OpenOption[] {StandardOpenOption.READ, StandardOpenOption.WRITE};
    };
    return FileChannel.open(p, modes);
  }

  /** A handle of m that can write (opening one if h cannot). */
  private static FileChannel writable(FileChannel h, Model m, Path p) throws IOException {
    try {
      h.write(ByteBuffer.allocate(0), 0);
      return h;
    } catch (NonWritableChannelException e) {
      FileChannel w = FileChannel.open(p, StandardOpenOption.WRITE);
      m.handles.add(w);
      return w;
    }
  }

  private static FileChannel readable(FileChannel h, Model m, Path p) throws IOException {
    try {
      h.read(ByteBuffer.allocate(0), 0);
      return h;
    } catch (NonReadableChannelException e) {
      FileChannel r = FileChannel.open(p, StandardOpenOption.READ);
      m.handles.add(r);
      return r;
    }
  }

  private static void writeFully(FileChannel ch, byte[] data, long off) throws IOException {
    ByteBuffer b = ByteBuffer.wrap(data);
    while (b.hasRemaining()) {
      ch.write(b, off + b.position());
    }
  }

  /** truncate(2) both ways (FileChannel.truncate only shrinks): through RandomAccessFile.setLength. */
  private static void truncate(Path p, long len) throws IOException {
    try (RandomAccessFile f = new RandomAccessFile(p.toFile(), "rw")) {
      f.setLength(len);
    }
  }

  private static void closeAll(Model m) throws IOException {
    for (FileChannel h : m.handles) {
      h.close();
    }
    m.handles.clear();
  }
}
