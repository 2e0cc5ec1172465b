package io.choir.tests;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import io.choir.client.ChoirClient;
import io.choir.client.ReplicaInfo;
import io.choir.proto.Entry;
import io.choir.proto.PeerEnvelope;
import io.choir.proto.Prepare;
import io.choir.proto.Put;
import io.choir.proto.StateTransferRequest;
import io.choir.proto.wire.DatagramHeader;
import io.choir.server.config.ServerConfig;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * PeerPortAttackProcessTest attacks the peer TCP ports of three real replica processes with a
 * cluster key, from outside, as issue 10 found them open: "any host could fetch the whole data set by
 * asking a peer port for a state transfer". A stranger knows the cluster id and the member ids (both
 * travel in the clear) but not the key. It asks every replica for a state transfer, and pushes a
 * forged PREPARE over a peer stream; it must get no data, no message may be delivered, and each
 * replica's status counters must say why (peer_tcp_refused_*).
 *
 * <p>The stranger uses only sockets and protobuf (no server class), so this test also runs on the
 * code before the fix, where the first test fails: every replica streams its whole data set.
 */
class PeerPortAttackProcessTest {
  static final int SECRETS = 300;
  static final int READ_TIMEOUT_MS = 15_000;

  @TempDir Path dir;
  private ProcessCluster cluster;

  @AfterEach
  void stop() {
    if (cluster != null) {
      cluster.close();
    }
  }

  /** Starts three replicas sharing a fresh key file, with SECRETS keys written and replicated. */
  private long startWithSecrets(ChoirClient[] client) throws Exception {
    cluster = new ProcessCluster(dir, "peerport", ClusterKeyFile.yaml(dir));
    cluster.startAll();
    client[0] = cluster.client(Duration.ofSeconds(10));
    cluster.awaitConverged(client[0], Duration.ofSeconds(30));
    for (int i = 0; i < SECRETS; i++) {
      client[0].put("secret/" + i, "value-" + i);
    }
    cluster.awaitConverged(client[0], Duration.ofSeconds(30));
    // The cluster id's hash is public: it is in every datagram header.
    return ServerConfig.load(dir.resolve("node1.yaml"), Map.of()).clusterIdHash();
  }

  private static PeerEnvelope.Builder envelope(long cluster, int sender, long view) {
    return PeerEnvelope.newBuilder().setProtocolVersion(DatagramHeader.PROTOCOL_VERSION).setClusterId(cluster)
        .setSender(sender).setView(view);
  }

  private static byte[] frame(PeerEnvelope e) {
    byte[] body = e.toByteArray();
    return ByteBuffer.allocate(4 + body.length).putInt(body.length).put(body).array();
  }

  /** Sends bytes to replica id's peer port and reads what comes back until it closes. */
  private byte[] strangerSends(int id, byte[] bytes) throws IOException {
    try (Socket s = new Socket("127.0.0.1", cluster.peerPort(id))) {
      s.setSoTimeout(READ_TIMEOUT_MS);
      s.getOutputStream().write(bytes);
      s.getOutputStream().flush();
      ByteArrayOutputStream got = new ByteArrayOutputStream();
      InputStream in = s.getInputStream();
      byte[] buf = new byte[1 << 16];
      try {
        for (int n; (n = in.read(buf)) >= 0; ) {
          got.write(buf, 0, n);
        }
      } catch (SocketTimeoutException e) {
        throw new AssertionError("replica " + id + " kept a stranger's connection open " + READ_TIMEOUT_MS + " ms");
      } catch (IOException reset) {
        // reset: what came before is all there is
      }
      return got.toByteArray();
    }
  }

  /** The secrets in a stream of plain state-transfer chunk frames. */
  private static int secretsIn(byte[] stream) throws IOException {
    DataInputStream in = new DataInputStream(new ByteArrayInputStream(stream));
    int found = 0;
    while (in.available() >= 4) {
      int n = in.readInt();
      if (n < 0 || n > in.available()) {
        break;
      }
      byte[] body = new byte[n];
      in.readFully(body);
      for (var kv : PeerEnvelope.parseFrom(body).getStateTransferChunk().getKvsList()) {
        found += kv.getKey().toStringUtf8().startsWith("secret/") ? 1 : 0;
      }
    }
    return found;
  }

  private static long counter(ReplicaInfo r, String name) {
    return r.counters().getOrDefault(name, 0L);
  }

  @Test
  void shouldGiveAStrangerNoneOfTheDataWhenItAsksAPeerPortForAStateTransfer() throws Exception {
    ChoirClient[] c = new ChoirClient[1];
    long clusterHash = startWithSecrets(c);
    try (ChoirClient client = c[0]) {
      int totalBytes = 0;
      int totalSecrets = 0;
      for (int id = 1; id <= 3; id++) {
        int claimed = id % 3 + 1; // a member's id: all the old check asked for
        byte[] request = frame(envelope(clusterHash, claimed, 1)
            .setStateTransferRequest(StateTransferRequest.newBuilder().setApplied(0)).build());
        byte[] got = strangerSends(id, request);
        int secrets = secretsIn(got);
        System.out.println("stranger asked replica " + id + " for a state transfer: got " + got.length
            + " bytes, " + secrets + " of " + SECRETS + " secrets");
        totalBytes += got.length;
        totalSecrets += secrets;
      }
      assertEquals(0, totalSecrets, "a stranger fetched the data set through a peer port");
      assertEquals(0, totalBytes, "a stranger got bytes from a peer port");
      List<ReplicaInfo> after = cluster.statuses(client);
      for (ReplicaInfo r : after) {
        assertEquals(1, counter(r, "peer_tcp_refused_bad_hello"), "replica " + r.id() + ": " + r.counters());
      }
      cluster.awaitConverged(client, Duration.ofSeconds(30));
    }
  }

  @Test
  void shouldDeliverNoForgedPrepareAStrangerPushesOverAPeerStream() throws Exception {
    ChoirClient[] c = new ChoirClient[1];
    long clusterHash = startWithSecrets(c);
    try (ChoirClient client = c[0]) {
      List<ReplicaInfo> before = cluster.awaitConverged(client, Duration.ofSeconds(30));
      ReplicaInfo primary = before.stream().filter(r -> r.role().equals("primary")).findFirst().orElseThrow();
      int backup = primary.id() % 3 + 1;
      long op = primary.op() + 1;
      Entry forged = Entry.newBuilder().setOp(op).setView(primary.view())
          .setPut(Put.newBuilder().setKey(ByteString.copyFromUtf8("forged"))
              .setValue(ByteString.copyFromUtf8("nobody wrote this"))).build();
      byte[] prepare = frame(envelope(clusterHash, primary.id(), primary.view())
          .setPrepare(Prepare.newBuilder().setFirstOp(op).addEntries(forged).setCommit(op)).build());
      byte[] got = strangerSends(backup, prepare);
      assertEquals(0, got.length);

      // A stranger with a key of its own: a well-formed hello, a guessed proof, then the PREPARE.
      ByteBuffer hello = ByteBuffer.allocate(53).putInt(0x43485431).putLong(clusterHash).putInt(primary.id())
          .putInt(backup).put((byte) 1);
      byte[] nonce = new byte[32];
      new SecureRandom().nextBytes(nonce);
      hello.put(nonce);
      byte[] guess = new byte[32];
      new SecureRandom().nextBytes(guess);
      ByteArrayOutputStream attempt = new ByteArrayOutputStream();
      attempt.write(hello.array());
      attempt.write(guess);
      attempt.write(prepare);
      byte[] answer = strangerSends(backup, attempt.toByteArray());
      assertTrue(answer.length <= 64, "at most the acceptor's nonce and MAC: " + answer.length);

      List<ReplicaInfo> after = cluster.awaitConverged(client, Duration.ofSeconds(30));
      ReplicaInfo b = after.get(backup - 1);
      assertEquals(counter(before.get(backup - 1), "peer_stream_received"), counter(b, "peer_stream_received"),
          "no peer message from the stranger reached the core");
      assertEquals(1, counter(b, "peer_tcp_refused_bad_hello"), b.counters().toString());
      assertEquals(1, counter(b, "peer_tcp_refused_bad_proof"), b.counters().toString());
      assertTrue(client.get("forged").isEmpty(), "the forged write is nowhere");
      assertEquals(before.get(0).checksum(), after.get(0).checksum(), "the data did not change");
    }
  }
}
