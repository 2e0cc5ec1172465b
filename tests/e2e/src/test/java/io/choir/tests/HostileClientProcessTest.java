package io.choir.tests;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.google.protobuf.ByteString;
import io.choir.client.ChoirClient;
import io.choir.client.ReplicaInfo;
import io.choir.proto.Get;
import io.choir.proto.Request;
import java.io.ByteArrayOutputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * HostileClientProcessTest attacks the primary's client port of three real replica processes from
 * outside (issue 10, items 7 and 8), each attacker on its own loopback source address, while a
 * well-behaved client (the real client library, from 127.0.0.1) puts and gets small values:
 * (a) 20 connections pipelining GETs of a 1 MiB value without reading the replies; (b) slowloris:
 * connections that start a frame and trickle its bytes, and connections that send nothing; (c) a flood
 * of connections from one address; (d) frames announcing far more than max_frame_bytes, negative
 * lengths, and garbage.
 *
 * <p>Each replica JVM runs with explicit limits (-Xmx256m, -XX:MaxDirectMemorySize=64m). Each test
 * asserts that every replica stays up, that every operation of the good client completes with the
 * right answer, that no replica's resident memory (VmRSS, sampled every 50 ms) goes above heap + direct
 * memory + {@link #ALLOWANCE_MIB}, and what the attack's bound must have counted. It prints the good
 * client's latency (p50, p99, max; before and during the attack) and each replica's peak RSS, and
 * asserts no timing: speed is printed, never asserted. {@code -Dchoir.hostile.seconds=N} sets how long
 * each attack lasts (default 8; the figures in docs/security.md are of 15 s runs), {@code -Dchoir.hostile.seed=S} replays the garbage of (d).
 */
class HostileClientProcessTest {
  private static final int HEAP_MIB = 256;
  private static final int DIRECT_MIB = 64;
  /**
   * RSS a replica may hold beyond its heap and direct-memory limits: metaspace and code cache (about
   * 100 MiB), thread stacks, GC structures, and RocksDB's native memory (a 64 MiB block cache and up to
   * 3 x 32 MiB of memtables).
   */
  private static final int ALLOWANCE_MIB = 320;
  private static final List<String> JVM = List.of("-Xmx" + HEAP_MIB + "m", "-XX:MaxDirectMemorySize=" + DIRECT_MIB + "m");
  private static final int PER_ADDRESS = 256;
  private static final String LIMITS = ""
      + "max_reply_bytes_per_connection: 4194304\n"
      + "client_frame_timeout_ms: 2000\n"
      + "max_connections_per_address: " + PER_ADDRESS + "\n";
  /** Short, so that (b) sees silent connections closed; (a) uses the default, to test the byte bounds alone. */
  private static final String SHORT_IDLE = "client_idle_timeout_ms: 3000\n";
  private static final int BIG_VALUE_BYTES = 1 << 20;
  private static final int ATTACK_SECONDS = Integer.getInteger("choir.hostile.seconds", 8);

  @TempDir Path dir;
  private ProcessCluster cluster;
  private ChoirClient client;
  private int primary;
  private InetSocketAddress target;
  /** The primary's status peaks of the last attack (connections, client_reply_bytes, direct_memory_bytes). */
  private Map<String, Long> lastStatusPeaks = Map.of();

  @AfterEach
  void stop() {
    if (client != null) {
      client.close();
    }
    if (cluster != null) {
      cluster.close();
    }
  }

  private void startCluster(String name, String extraYaml) throws Exception {
    cluster = new ProcessCluster(dir, name, 3, LIMITS + extraYaml, JVM);
    cluster.startAll();
    client = ChoirClient.builder().endpoints(cluster.endpoints()).requestTimeout(Duration.ofSeconds(10)).build();
    cluster.awaitConverged(client, Duration.ofSeconds(60));
    primary = cluster.awaitPrimary(client, Duration.ofSeconds(30));
    String[] hostPort = cluster.endpoint(primary).split(":");
    target = new InetSocketAddress(hostPort[0], Integer.parseInt(hostPort[1]));
  }

  /** An attack runs on its own threads from start() until close(). */
  private interface Attack extends AutoCloseable {
    void start() throws Exception;

    /** What it did, for the report line. */
    String done();

    @Override
    void close() throws Exception;
  }

  /**
   * Runs the good client alone (baseline), then during attack, samples every replica's RSS, prints the
   * figures and asserts liveness, service and memory; returns the primary's status after the attack.
   */
  private ReplicaInfo underAttack(String title, Attack attack) throws Exception {
    GoodClient baseline = new GoodClient(client, "good/");
    TimeUnit.SECONDS.sleep(2); // the measurement window of the baseline
    baseline.close();
    List<Long> pids = new ArrayList<>();
    for (int id = 1; id <= 3; id++) {
      pids.add(cluster.replica(id).pid());
    }
    GoodClient good;
    Map<Long, Long> peaks;
    Map<String, Long> statusPeaks = new ConcurrentHashMap<>();
    AtomicBoolean sampling = new AtomicBoolean(true);
    Thread statusSampler = new Thread(() -> {
      while (sampling.get()) {
        ReplicaInfo s = cluster.status(client, primary);
        if (s != null) {
          for (String k : List.of("connections", "client_reply_bytes", "client_frame_bytes",
              "direct_memory_netty_bytes", "direct_memory_jdk_bytes")) {
            statusPeaks.merge(k, ProcessCluster.counter(s, k), Math::max);
          }
        }
        try {
          TimeUnit.MILLISECONDS.sleep(250); // sampling the primary's status during the attack
        } catch (InterruptedException e) {
          return;
        }
      }
    }, "status-sampler");
    try (RssSampler rss = new RssSampler(pids)) {
      attack.start();
      good = new GoodClient(client, "good/");
      statusSampler.start();
      try {
        TimeUnit.SECONDS.sleep(ATTACK_SECONDS); // the attack's measurement window
      } finally {
        sampling.set(false);
        statusSampler.join(10_000);
        good.close();
        attack.close();
      }
      peaks = rss.peakMib();
    }
    Map<Integer, Long> peakById = new TreeMap<>();
    for (int id = 1; id <= 3; id++) {
      peakById.put(id, peaks.get(pids.get(id - 1)));
    }
    int limitMib = HEAP_MIB + DIRECT_MIB + ALLOWANCE_MIB;
    System.out.println("[hostile] attack " + title + " for " + ATTACK_SECONDS + " s on primary " + primary
        + ": " + attack.done());
    System.out.println("[hostile]   good client before: " + baseline.summary());
    System.out.println("[hostile]   good client during: " + good.summary() + "; failures " + good.failures().size());
    if (!good.slow().isEmpty()) {
      System.out.println("[hostile]   good client's slow operations: " + good.slow());
    }
    System.out.println("[hostile]   peak RSS MiB by replica " + peakById + " (limit " + limitMib + " = heap " + HEAP_MIB
        + " + direct " + DIRECT_MIB + " + allowance " + ALLOWANCE_MIB + ")");
    for (int id = 1; id <= 3; id++) {
      assertTrue(cluster.replica(id).isAlive(), "replica " + id + " died under attack " + title + "; see " + cluster.log(id));
      // Before the bounds, (a) filled the primary's heap (read threads) and direct memory (unsent replies).
      String log = Files.readString(cluster.log(id));
      assertFalse(log.contains("OutOfMemoryError") || log.contains("OutOfDirectMemoryError"),
          "replica " + id + " ran out of memory under attack " + title);
    }
    assertTrue(good.failures().isEmpty(), "the good client's operations failed under attack " + title + ": "
        + good.failures().subList(0, Math.min(5, good.failures().size())));
    assertTrue(good.gets() > 0, "the good client completed no GET during attack " + title);
    // A status call asks that replica once; the client's connection may have idled out
    // (client_idle_timeout_ms 3 s in (b) and (d)) and be closed just as the call is sent: ask again.
    ReplicaInfo after = null;
    long statusDeadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    while (after == null && System.nanoTime() < statusDeadline) {
      after = cluster.status(client, primary);
      if (after == null) {
        TimeUnit.MILLISECONDS.sleep(100); // polling status: there is no event to wait on from outside
      }
    }
    assertTrue(after != null, "the primary does not answer status after attack " + title);
    System.out.println("[hostile]   primary counters: " + clientCounters(after));
    System.out.println("[hostile]   primary's peaks during the attack (status every 250 ms): connections "
        + statusPeaks.get("connections") + ", reply bytes in flight " + statusPeaks.get("client_reply_bytes")
        + ", direct memory: Netty's " + statusPeaks.get("direct_memory_netty_bytes") + ", the JDK's "
        + statusPeaks.get("direct_memory_jdk_bytes"));
    lastStatusPeaks = statusPeaks;
    for (int id = 1; id <= 3; id++) {
      assertTrue(peakById.get(id) <= limitMib, "replica " + id + " peaked at " + peakById.get(id) + " MiB RSS under attack "
          + title + ", above " + limitMib + " MiB");
    }
    // Still serving, large values too, and the replicas agree.
    byte[] big = client.get("big").orElseThrow().value();
    assertEquals(BIG_VALUE_BYTES, big.length);
    cluster.awaitConverged(client, Duration.ofSeconds(60));
    return after;
  }

  private static Map<String, Long> clientCounters(ReplicaInfo r) {
    Map<String, Long> out = new TreeMap<>();
    r.counters().forEach((k, v) -> {
      if (k.startsWith("client_") || k.equals("connections") || k.equals("replies_dropped") || k.equals("reads")
          || k.equals("busy") || k.equals("read_timeouts")) {
        out.put(k, v);
      }
    });
    return out;
  }

  private static Socket connectFrom(String source, InetSocketAddress to) throws IOException {
    Socket s = new Socket();
    s.setReceiveBufferSize(4096); // the attacker reads nothing: keep what the kernel buffers for it small
    s.bind(new InetSocketAddress(InetAddress.getByName(source), 0));
    s.connect(to, 5000);
    return s;
  }

  private static byte[] frame(Request r) {
    byte[] body = r.toByteArray();
    byte[] out = new byte[4 + body.length];
    out[0] = (byte) (body.length >>> 24);
    out[1] = (byte) (body.length >>> 16);
    out[2] = (byte) (body.length >>> 8);
    out[3] = (byte) body.length;
    System.arraycopy(body, 0, out, 4, body.length);
    return out;
  }

  private void putBigValue() {
    byte[] big = new byte[BIG_VALUE_BYTES];
    Arrays.fill(big, (byte) 'b');
    client.put("big".getBytes(StandardCharsets.UTF_8), big);
  }

  /** Waits until every reply byte the primary counts has drained (the attackers are gone). */
  private void awaitReplyBytesDrained() throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    ReplicaInfo s = null;
    while (System.nanoTime() < deadline) {
      s = cluster.status(client, primary);
      if (s != null && ProcessCluster.counter(s, "client_reply_bytes") == 0) {
        return;
      }
      TimeUnit.MILLISECONDS.sleep(100); // polling status: there is no event to wait on from outside
    }
    fail("reply bytes still counted 30 s after the attackers left: " + (s == null ? "no status" : clientCounters(s)));
  }

  /**
   * (a) The attack of the issue: 20 connections pipeline GETs of a 1 MiB value and never read. Before
   * the reply-byte bounds the primary computed every one of them (up to max_in_flight_per_connection,
   * 1024, per connection: 20 GiB of replies) and ran out of memory.
   */
  @Test
  void shouldKeepServingWithinMemoryWhileConnectionsPipelineGetsOfALargeValueAndNeverRead() throws Exception {
    startCluster("hostile-gets", "");
    putBigValue();
    AtomicLong framesSent = new AtomicLong();
    AtomicLong reconnects = new AtomicLong();
    List<Socket> sockets = new ArrayList<>();
    List<Thread> threads = new ArrayList<>();
    ReplicaInfo after = underAttack("(a) 20 connections pipelining GETs of a 1 MiB value, never reading", new Attack() {
      volatile boolean running = true;

      @Override
      public void start() throws IOException {
        for (int i = 0; i < 20; i++) {
          Socket s = connectFrom("127.0.0.2", target);
          synchronized (sockets) {
            sockets.add(s);
          }
          Thread t = new Thread(() -> pipelineGets(s), "attack-gets-" + i);
          t.setDaemon(true);
          t.start();
          threads.add(t);
        }
      }

      /** Pipelines GETs on s; when the server closes it, connects again (a persistent attacker). */
      private void pipelineGets(Socket first) {
        Socket s = first;
        ByteArrayOutputStream batch = new ByteArrayOutputStream();
        long id = 1;
        while (running) {
          try {
            OutputStream out = s.getOutputStream();
            while (running) {
              batch.reset();
              for (int j = 0; j < 256; j++, id++) {
                batch.write(frame(Request.newBuilder().setRequestId(id)
                    .setGet(Get.newBuilder().setKey(ByteString.copyFromUtf8("big"))).build()));
              }
              out.write(batch.toByteArray()); // blocks once the server stops reading this connection
              framesSent.addAndGet(256);
            }
          } catch (IOException closed) {
            if (!running) {
              return;
            }
            reconnects.incrementAndGet();
            try {
              s.close();
              s = connectFrom("127.0.0.2", target);
              synchronized (sockets) {
                sockets.add(s);
              }
            } catch (IOException e) {
              return;
            }
          }
        }
      }

      @Override
      public String done() {
        return framesSent.get() + " GET frames written (at least; a blocked batch is not counted), "
            + reconnects.get() + " reconnects after the server closed a connection";
      }

      @Override
      public void close() throws Exception {
        running = false;
        synchronized (sockets) {
          for (Socket s : sockets) {
            s.close();
          }
        }
        for (Thread t : threads) {
          t.join(5000);
        }
      }
    });
    assertTrue(ProcessCluster.counter(after, "client_reads_deferred") > 0,
        "no read was deferred: the attack did not reach the reply-byte bound " + clientCounters(after));
    awaitReplyBytesDrained();
  }

  /**
   * (b) Slowloris: 200 connections each start a frame (half of them only part of its length prefix) and
   * trickle one byte every 100 ms, reconnecting when closed; 20 more connect and send nothing. Before
   * client_frame_timeout_ms the tricklers were never closed (each byte reset the idle timer).
   */
  @Test
  void shouldCloseAndCountConnectionsThatTrickleAFrameOrSendNothing() throws Exception {
    startCluster("hostile-slowloris", SHORT_IDLE);
    putBigValue();
    int tricklers = 200;
    int silent = 20;
    AtomicLong closedSeen = new AtomicLong();
    AtomicLong bytesTrickled = new AtomicLong();
    List<Socket> silentSockets = new ArrayList<>();
    Socket[] trickle = new Socket[tricklers];
    Thread[] thread = new Thread[1];
    ReplicaInfo after = underAttack("(b) slowloris: " + tricklers + " connections trickling a frame, " + silent
        + " silent", new Attack() {
      volatile boolean running = true;

      private Socket open(int i) throws IOException {
        Socket s = connectFrom("127.0.0.3", target);
        OutputStream out = s.getOutputStream();
        // Half announce a 1000-byte frame, half send only two bytes of the length prefix.
        out.write(i % 2 == 0 ? new byte[] {0, 0, 3, (byte) 0xe8} : new byte[] {0, 0});
        return s;
      }

      @Override
      public void start() throws IOException {
        for (int i = 0; i < silent; i++) {
          silentSockets.add(connectFrom("127.0.0.3", target));
        }
        for (int i = 0; i < tricklers; i++) {
          trickle[i] = open(i);
        }
        thread[0] = new Thread(() -> {
          while (running) {
            for (int i = 0; i < tricklers && running; i++) {
              try {
                trickle[i].getOutputStream().write(0x0a);
                bytesTrickled.incrementAndGet();
              } catch (IOException closedByServer) {
                closedSeen.incrementAndGet();
                try {
                  trickle[i].close();
                  trickle[i] = open(i);
                } catch (IOException e) {
                  // try again on the next round
                }
              }
            }
            try {
              TimeUnit.MILLISECONDS.sleep(100); // the trickle's pace: one byte per connection per 100 ms
            } catch (InterruptedException e) {
              return;
            }
          }
        }, "attack-slowloris");
        thread[0].setDaemon(true);
        thread[0].start();
      }

      @Override
      public String done() {
        return bytesTrickled.get() + " bytes trickled; the attacker saw " + closedSeen.get() + " of its connections closed";
      }

      @Override
      public void close() throws Exception {
        running = false;
        thread[0].join(5000);
        for (Socket s : trickle) {
          s.close();
        }
        for (Socket s : silentSockets) {
          s.close();
        }
      }
    });
    assertTrue(closedSeen.get() >= tricklers, "the server closed only " + closedSeen.get() + " trickling connections");
    assertTrue(ProcessCluster.counter(after, "client_closed_frame_timeout") >= tricklers,
        "fewer than " + tricklers + " trickling connections were closed for their frame timeout: " + clientCounters(after));
    assertTrue(ProcessCluster.counter(after, "client_closed_idle") >= silent,
        "fewer than " + silent + " silent connections were closed as idle: " + clientCounters(after));
  }

  /**
   * (e) Unfinished large frames: 96 connections from four addresses each announce a frame of 4 MiB,
   * send 1 MiB of it at once and then one byte every 100 ms, reconnecting when closed. Before
   * max_frame_bytes_total each held its megabyte until its frame timeout: 96 MiB against 64 MiB of
   * direct memory. Now the primary holds at most max_frame_bytes_total (a quarter of its direct memory
   * here) and refuses the rest, counted; small requests of a good client are not affected.
   */
  @Test
  void shouldBoundUnfinishedLargeFramesOverAllConnections() throws Exception {
    startCluster("hostile-partial", "");
    putBigValue();
    int holders = 96;
    int sent = 1 << 20;
    AtomicLong closedSeen = new AtomicLong();
    AtomicLong bytesSent = new AtomicLong();
    Socket[] held = new Socket[holders];
    Thread[] thread = new Thread[1];
    ReplicaInfo after = underAttack("(e) " + holders + " connections holding 1 MiB of an unfinished 4 MiB frame", new Attack() {
      volatile boolean running = true;

      private Socket open(int i) throws IOException {
        Socket s = connectFrom("127.0.0." + (10 + i % 4), target);
        OutputStream out = s.getOutputStream();
        byte[] start = new byte[4 + sent];
        start[1] = 0x40; // length 4 MiB (0x00400000), the default max_frame_bytes
        out.write(start);
        bytesSent.addAndGet(start.length);
        return s;
      }

      @Override
      public void start() {
        thread[0] = new Thread(() -> {
          while (running) {
            for (int i = 0; i < holders && running; i++) {
              try {
                if (held[i] == null) {
                  held[i] = open(i);
                } else {
                  held[i].getOutputStream().write(0);
                  bytesSent.incrementAndGet();
                }
              } catch (IOException closedByServer) {
                closedSeen.incrementAndGet();
                closeQuietly(held[i]);
                held[i] = null; // reopened on the next round
              }
            }
            try {
              TimeUnit.MILLISECONDS.sleep(100); // the holders' pace: one byte each per 100 ms
            } catch (InterruptedException e) {
              return;
            }
          }
        }, "attack-partial-frames");
        thread[0].setDaemon(true);
        thread[0].start();
      }

      @Override
      public String done() {
        return (bytesSent.get() >> 20) + " MiB sent; the attacker saw " + closedSeen.get() + " of its connections closed";
      }

      @Override
      public void close() throws Exception {
        running = false;
        thread[0].join(10_000);
        for (Socket s : held) {
          closeQuietly(s);
        }
      }
    });
    long bound = (long) DIRECT_MIB << 20 >> 2;
    System.out.println("[hostile]   unfinished frame bytes held at most " + lastStatusPeaks.get("client_frame_bytes")
        + " (bound " + bound + ")");
    assertTrue(ProcessCluster.counter(after, "client_closed_frame_memory") > 0,
        "no connection was refused for max_frame_bytes_total: " + clientCounters(after));
    assertTrue(lastStatusPeaks.getOrDefault("client_frame_bytes", Long.MAX_VALUE) <= bound,
        "more than max_frame_bytes_total of unfinished frames were held: " + lastStatusPeaks);
  }

  /**
   * (c) A flood of connections from one address: 3000 opened and held (the oldest closed and reopened
   * once 3000 are open). Only max_connections_per_address of them may be open at once; the rest are
   * refused and counted. Before that bound, every one was accepted (max_connections is 10,000).
   */
  @Test
  void shouldRefuseAndCountConnectionsBeyondThePerAddressBound() throws Exception {
    startCluster("hostile-flood", SHORT_IDLE);
    putBigValue();
    ArrayDeque<Socket> held = new ArrayDeque<>();
    AtomicLong opened = new AtomicLong();
    AtomicLong failedToOpen = new AtomicLong();
    AtomicLong churns = new AtomicLong();
    Thread[] thread = new Thread[1];
    ReplicaInfo after = underAttack("(c) connection flood from one address", new Attack() {
      volatile boolean running = true;

      @Override
      public void start() {
        thread[0] = new Thread(() -> {
          while (running) {
            try {
              held.add(connectFrom("127.0.0.4", target));
              opened.incrementAndGet();
            } catch (IOException e) {
              failedToOpen.incrementAndGet();
            }
            if (held.size() >= 3000) {
              for (int i = 0; i < 500; i++) {
                closeQuietly(held.poll());
              }
              churns.incrementAndGet();
            }
          }
        }, "attack-flood");
        thread[0].setDaemon(true);
        thread[0].start();
      }

      @Override
      public String done() {
        return opened.get() + " connections opened from 127.0.0.4 (" + failedToOpen.get() + " attempts failed)";
      }

      @Override
      public void close() throws Exception {
        running = false;
        thread[0].join(10_000);
        held.forEach(HostileClientProcessTest::closeQuietly);
      }
    });
    assertTrue(opened.get() > PER_ADDRESS, "the flood opened only " + opened.get() + " connections");
    // Each churn may free up to PER_ADDRESS admitted connections for new ones; every other one was refused.
    long mostAdmitted = PER_ADDRESS * (churns.get() + 1);
    assertTrue(ProcessCluster.counter(after, "client_refused_per_address") >= opened.get() - mostAdmitted,
        "connections beyond the per-address bound were not all refused and counted: " + clientCounters(after));
    assertTrue(lastStatusPeaks.getOrDefault("connections", Long.MAX_VALUE) <= PER_ADDRESS + 10,
        "more than max_connections_per_address were open during the flood: " + lastStatusPeaks);
  }

  private static void closeQuietly(Socket s) {
    if (s != null) {
      try {
        s.close();
      } catch (IOException ignored) {
        // closing an attacker's socket
      }
    }
  }

  /**
   * (d) Frames that announce far more than max_frame_bytes (up to 2^31 - 1), negative lengths, random
   * garbage and well-framed garbage, each on a new connection from one address, four at a time: each is
   * answered and closed without the replica buffering what was announced.
   */
  @Test
  void shouldCloseAndCountHugeFrameHeadersAndGarbageWithoutBufferingThem() throws Exception {
    startCluster("hostile-garbage", SHORT_IDLE);
    putBigValue();
    long seed = Long.getLong("choir.hostile.seed", System.nanoTime());
    System.out.println("HostileClientProcessTest garbage seed=" + seed + " (replay: -Dchoir.hostile.seed=" + seed + ")");
    AtomicLong huge = new AtomicLong();
    AtomicLong negative = new AtomicLong();
    AtomicLong garbage = new AtomicLong();
    AtomicLong notClosed = new AtomicLong();
    List<Thread> threads = new ArrayList<>();
    ReplicaInfo after = underAttack("(d) huge frame headers and garbage", new Attack() {
      volatile boolean running = true;

      @Override
      public void start() {
        for (int t = 0; t < 4; t++) {
          SplittableRandom random = new SplittableRandom(seed + t);
          Thread th = new Thread(() -> {
            for (long i = 0; running; i++) {
              try (Socket s = connectFrom("127.0.0.5", target)) {
                s.setSoTimeout(10_000);
                DataOutputStream out = new DataOutputStream(s.getOutputStream());
                int kind = (int) (i % 4);
                if (kind == 0) {
                  huge.incrementAndGet();
                  out.writeInt(random.nextInt((4 << 20) + 1, Integer.MAX_VALUE));
                  byte[] junk = new byte[64 << 10];
                  random.nextBytes(junk);
                  out.write(junk); // what follows a huge header is discarded, not buffered
                } else if (kind == 1) {
                  negative.incrementAndGet();
                  out.writeInt(random.nextInt(Integer.MIN_VALUE, 0));
                } else if (kind == 2) {
                  byte[] junk = new byte[random.nextInt(1, 8192)];
                  random.nextBytes(junk);
                  out.write(junk);
                  garbage.incrementAndGet();
                } else {
                  byte[] body = new byte[random.nextInt(1, 2048)];
                  random.nextBytes(body);
                  out.writeInt(body.length);
                  out.write(body);
                  garbage.incrementAndGet();
                }
                out.flush();
                if (!closedByServer(s.getInputStream())) {
                  notClosed.incrementAndGet();
                }
              } catch (IOException e) {
                // reset by the server while we wrote: closed, as it should be
              }
            }
          }, "attack-garbage-" + t);
          th.setDaemon(true);
          th.start();
          threads.add(th);
        }
      }

      @Override
      public String done() {
        return huge.get() + " huge headers, " + negative.get() + " negative lengths, " + garbage.get()
            + " garbage sends; " + notClosed.get() + " connections left open (garbage that parsed)";
      }

      @Override
      public void close() throws Exception {
        running = false;
        for (Thread t : threads) {
          t.join(15_000);
        }
      }
    });
    assertTrue(ProcessCluster.counter(after, "client_closed_too_large") >= huge.get(),
        "not every huge header was counted: " + clientCounters(after));
    assertTrue(ProcessCluster.counter(after, "client_closed_malformed") >= negative.get(),
        "not every negative length was counted: " + clientCounters(after));
  }

  /** Reads until the server closes (true) or 10 s pass without it (false); replies are skipped. */
  private static boolean closedByServer(InputStream in) {
    byte[] sink = new byte[4096];
    try {
      while (in.read(sink) >= 0) {
        // the server's error reply, then EOF
      }
      return true;
    } catch (SocketTimeoutException e) {
      return false;
    } catch (IOException reset) {
      return true;
    }
  }
}
