package io.choir.server.metrics;

import com.google.protobuf.ByteString;
import io.choir.proto.Get;
import io.choir.proto.Put;
import io.choir.proto.ReplicaStatus;
import io.choir.proto.Request;
import io.choir.proto.Response;
import io.choir.proto.StatusRequest;
import io.choir.server.config.ServerConfig;
import io.choir.server.replica.ReplicaServer;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;

/**
 * MetricsCluster is the metrics tests' fixture: 1 or 3 real replicas in this JVM, on free loopback
 * ports, unicast peers (no multicast group), metrics_address 127.0.0.1:0 each, and a test_fault_file
 * each (to cut a replica off); plus a plain client over the wire protocol and an HTTP getter.
 */
final class MetricsCluster implements AutoCloseable {
  private static final AtomicLong REQUEST_IDS = new AtomicLong(1);
  private final Path dir;
  private final List<ServerConfig> configs = new ArrayList<>();
  private final ReplicaServer[] servers;
  private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();

  MetricsCluster(Path dir, int size) throws Exception {
    this.dir = dir;
    StringBuilder replicas = new StringBuilder();
    for (int id = 1; id <= size; id++) {
      replicas.append(id == 1 ? "" : ",").append(id).append("=127.0.0.1:").append(freePort())
          .append("/127.0.0.1:").append(freePort());
    }
    servers = new ReplicaServer[size + 1];
    for (int id = 1; id <= size; id++) {
      Map<String, Object> m = new LinkedHashMap<>();
      m.put("cluster_id", "metrics-test");
      m.put("replica_id", id);
      m.put("replicas", replicas.toString());
      m.put("peer_transport", "unicast");
      m.put("data_dir", dir.resolve("data" + id).toString());
      m.put("metrics_address", "127.0.0.1:0");
      m.put("test_fault_file", faultFile(id).toString());
      m.put("log_level", "warn");
      configs.add(ServerConfig.build(m, Map.of()));
    }
    for (int id = 1; id <= size; id++) {
      start(id);
    }
  }

  private Path faultFile(int id) {
    return dir.resolve("faults" + id);
  }

  void start(int id) throws InterruptedException {
    servers[id] = ReplicaServer.start(configs.get(id - 1));
  }

  void stop(int id) {
    servers[id].close();
    servers[id] = null;
  }

  ReplicaServer server(int id) {
    return servers[id];
  }

  int size() {
    return servers.length - 1;
  }

  /** Cuts replica id off from the peers listed (both ways); none heals. */
  void cutOff(int id, int... peers) throws IOException {
    StringBuilder b = new StringBuilder();
    for (int p : peers) {
      b.append(p).append(' ');
    }
    Files.writeString(faultFile(id), b.toString());
  }

  /** GET path of replica id's metrics address: the status code and the body. */
  HttpResponse<String> get(int id, String path) throws IOException, InterruptedException {
    return send(id, HttpRequest.newBuilder(uri(id, path)).GET());
  }

  HttpResponse<String> send(int id, HttpRequest.Builder request) throws IOException, InterruptedException {
    return http.send(request.timeout(Duration.ofSeconds(5)).build(),
        HttpResponse.BodyHandlers.ofString(StandardCharsets.UTF_8));
  }

  URI uri(int id, String path) {
    var a = servers[id].metricsAddress();
    return URI.create("http://127.0.0.1:" + a.getPort() + path);
  }

  PromText scrape(int id) throws IOException, InterruptedException {
    HttpResponse<String> r = get(id, "/metrics");
    if (r.statusCode() != 200) {
      throw new AssertionError("/metrics answered " + r.statusCode());
    }
    return PromText.parse(r.body());
  }

  /** The replica's status over its client port. */
  ReplicaStatus status(int id) throws IOException {
    return call(id, Request.newBuilder().setStatus(StatusRequest.getDefaultInstance())).getReplicaStatus();
  }

  /** The id of the replica that is primary in a normal view, or 0. */
  int primary() throws IOException {
    for (int id = 1; id < servers.length; id++) {
      if (servers[id] != null && status(id).getRole().equals("primary")) {
        return id;
      }
    }
    return 0;
  }

  Response put(int id, String key, String value) throws IOException {
    return call(id, Request.newBuilder().setPut(Put.newBuilder().setKey(utf8(key)).setValue(utf8(value))));
  }

  Response read(int id, String key) throws IOException {
    return call(id, Request.newBuilder().setGet(Get.newBuilder().setKey(utf8(key))));
  }

  /** One request on a new connection (the fixture's clients are simple, not fast). */
  Response call(int id, Request.Builder request) throws IOException {
    try (Socket s = new Socket(InetAddress.getLoopbackAddress(), servers[id].clientAddress().getPort())) {
      s.setSoTimeout(10_000);
      byte[] body = request.setRequestId(REQUEST_IDS.getAndIncrement()).build().toByteArray();
      DataOutputStream out = new DataOutputStream(s.getOutputStream());
      out.writeInt(body.length);
      out.write(body);
      out.flush();
      DataInputStream in = new DataInputStream(s.getInputStream());
      byte[] reply = new byte[in.readInt()];
      in.readFully(reply);
      return Response.parseFrom(reply);
    }
  }

  private static ByteString utf8(String s) {
    return ByteString.copyFromUtf8(s);
  }

  /** Polls condition until it holds or timeoutMs passes; fails with what. */
  static void await(String what, long timeoutMs, Check condition) throws Exception {
    long deadline = System.nanoTime() + timeoutMs * 1_000_000;
    Exception last = null;
    while (System.nanoTime() < deadline) {
      try {
        if (condition.holds()) {
          return;
        }
      } catch (Exception e) {
        last = e;
      }
      Thread.sleep(20); // polling interval, not a wait for an outcome
    }
    throw new AssertionError("timed out waiting for " + what + (last == null ? "" : ": " + last), last);
  }

  /** A condition polled by {@link #await}. */
  interface Check {
    boolean holds() throws Exception;
  }

  static int freePort() throws IOException {
    try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      return s.getLocalPort();
    }
  }

  @Override
  public void close() {
    for (int id = 1; id < servers.length; id++) {
      if (servers[id] != null) {
        servers[id].close();
      }
    }
  }
}
