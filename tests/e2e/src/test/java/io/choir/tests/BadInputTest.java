package io.choir.tests;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import io.choir.proto.Get;
import io.choir.proto.Put;
import io.choir.proto.RegisterSession;
import io.choir.proto.Request;
import io.choir.proto.Response;
import io.choir.proto.Status;
import io.choir.server.replica.ReplicaServer;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.net.Socket;
import java.net.SocketException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * BadInputTest sends what a broken or hostile client might over raw sockets (issue 2, item 5) and
 * checks each gets its clear error, the bad connection is closed, and the replica keeps serving.
 */
class BadInputTest {
  @TempDir Path dir;
  private ReplicaServer server;
  private int port;

  @BeforeEach
  void start() throws Exception {
    port = TestCluster.freePort();
    Map<String, Object> s = TestCluster.singleReplica(dir.resolve("data"), port);
    s.put("max_frame_bytes", 1 << 20);
    s.put("max_value_bytes", 1 << 19);
    s.put("max_key_bytes", 64);
    server = ReplicaServer.start(TestCluster.config(s));
  }

  @AfterEach
  void stop() {
    if (server != null) {
      server.close();
    }
  }

  /** A raw connection speaking the length-prefixed framing by hand. */
  private final class Raw implements AutoCloseable {
    final Socket socket = new Socket("127.0.0.1", port);
    final DataOutputStream out = new DataOutputStream(socket.getOutputStream());
    final DataInputStream in = new DataInputStream(socket.getInputStream());

    Raw() throws IOException {
      socket.setSoTimeout(10_000);
    }

    void send(Request r) throws IOException {
      byte[] b = r.toByteArray();
      out.writeInt(b.length);
      out.write(b);
      out.flush();
    }

    Response receive() throws IOException {
      int n = in.readInt();
      byte[] b = new byte[n];
      in.readFully(b);
      return Response.parseFrom(b);
    }

    /** True when the server closed the connection (EOF or reset) within the socket timeout. */
    boolean closedByServer() throws IOException {
      try {
        return in.read() == -1;
      } catch (EOFException | SocketException e) {
        return true;
      }
    }

    @Override
    public void close() throws IOException {
      socket.close();
    }
  }

  /** A put under client id 77, which no session has: refused before the log, or SESSION_EXPIRED. */
  private static Request put(long id, String key, byte[] value) {
    return put(77, id, key, value);
  }

  private static Request put(long clientId, long id, String key, byte[] value) {
    return Request.newBuilder().setClientId(clientId).setRequestId(id)
        .setPut(Put.newBuilder().setKey(ByteString.copyFromUtf8(key)).setValue(ByteString.copyFrom(value))).build();
  }

  private void assertStillServes() throws IOException {
    try (Raw ok = new Raw()) {
      // client_id 0: a write outside any session (executed, no saved reply), so no registration first.
      Request p = Request.newBuilder().setClientId(0).setRequestId(1)
          .setPut(Put.newBuilder().setKey(ByteString.copyFromUtf8("alive")).setValue(ByteString.copyFromUtf8("yes"))).build();
      ok.send(p);
      Response r = ok.receive();
      assertEquals(Status.OK, r.getStatus(), r.getError());
      ok.send(Request.newBuilder().setClientId(0).setRequestId(2)
          .setGet(Get.newBuilder().setKey(ByteString.copyFromUtf8("alive"))).build());
      Response g = ok.receive();
      assertEquals(Status.OK, g.getStatus());
      assertEquals("yes", g.getValue().toStringUtf8());
    }
  }

  @Test
  void shouldAnswerTooLargeAndCloseWhenAFrameExceedsTheLimit() throws Exception {
    try (Raw raw = new Raw()) {
      raw.out.writeInt((1 << 20) + 1);
      raw.out.write(new byte[100]);
      raw.out.flush();
      Response r = raw.receive();
      assertEquals(Status.TOO_LARGE, r.getStatus());
      assertTrue(r.getError().contains("max_frame_bytes"), r.getError());
      assertTrue(raw.closedByServer());
    }
    assertStillServes();
  }

  @Test
  void shouldAnswerInvalidAndCloseWhenAFrameDoesNotParse() throws Exception {
    try (Raw raw = new Raw()) {
      byte[] junk = {(byte) 0xff, (byte) 0xff, (byte) 0xff, (byte) 0xff, (byte) 0xff, 0x07};
      raw.out.writeInt(junk.length);
      raw.out.write(junk);
      raw.out.flush();
      Response r = raw.receive();
      assertEquals(Status.INVALID, r.getStatus());
      assertTrue(raw.closedByServer());
    }
    assertStillServes();
  }

  @Test
  void shouldAnswerInvalidAndCloseOnANegativeLength() throws Exception {
    try (Raw raw = new Raw()) {
      raw.out.writeInt(-5);
      raw.out.flush();
      assertEquals(Status.INVALID, raw.receive().getStatus());
      assertTrue(raw.closedByServer());
    }
    assertStillServes();
  }

  @Test
  void shouldRefuseEmptyAndOversizedKeysAndValuesButKeepTheConnection() throws Exception {
    try (Raw raw = new Raw()) {
      raw.send(put(1, "", new byte[1]));
      Response empty = raw.receive();
      assertEquals(Status.INVALID, empty.getStatus());
      assertTrue(empty.getError().contains("key is empty"), empty.getError());
      raw.send(put(2, "k".repeat(65), new byte[1]));
      Response bigKey = raw.receive();
      assertEquals(Status.TOO_LARGE, bigKey.getStatus());
      assertTrue(bigKey.getError().contains("max_key_bytes"), bigKey.getError());
      raw.send(put(3, "k", new byte[(1 << 19) + 1]));
      Response bigValue = raw.receive();
      assertEquals(Status.TOO_LARGE, bigValue.getStatus());
      assertTrue(bigValue.getError().contains("max_value_bytes"), bigValue.getError());
      raw.send(Request.newBuilder().setClientId(77).setRequestId(4).build());
      assertEquals(Status.INVALID, raw.receive().getStatus());
      raw.send(Request.newBuilder().setClientId(77).setRequestId(5)
          .setRegisterSession(RegisterSession.getDefaultInstance()).build());
      Response registered = raw.receive();
      assertEquals(Status.OK, registered.getStatus(), "the same connection still works");
      long session = registered.getSessionId();
      assertTrue(session != 0 && session != 77, "the log assigns the session's id: " + session);
      raw.send(put(6, "k", "under the registration's id".getBytes()));
      Response outside = raw.receive();
      assertEquals(Status.SESSION_EXPIRED, outside.getStatus(), "77 names the registration, not a session");
      raw.send(put(session, 7, "k", "fine".getBytes()));
      assertEquals(Status.OK, raw.receive().getStatus(), "and a write in the new session executes");
    }
  }

  @Test
  void shouldSurviveRandomAndMutatedFramesAndStillAnswerCorrectly() throws Exception {
    long seed = Long.getLong("choir.fuzz.seed", System.nanoTime());
    System.out.println("BadInputTest fuzz seed=" + seed + " (replay: -Dchoir.fuzz.seed=" + seed + ")");
    Random random = new Random(seed);
    byte[] valid = put(1, "fuzz", "value".getBytes()).toByteArray();
    for (int round = 0; round < 300; round++) {
      try (Raw raw = new Raw()) {
        raw.socket.setSoTimeout(2000);
        byte[] body;
        int kind = random.nextInt(3);
        if (kind == 0) {
          body = new byte[random.nextInt(64)];
          random.nextBytes(body);
        } else {
          body = valid.clone();
          for (int flips = 1 + random.nextInt(4); flips > 0; flips--) {
            body[random.nextInt(body.length)] ^= (byte) (1 << random.nextInt(8));
          }
          if (kind == 2) {
            body = Arrays.copyOf(body, random.nextInt(body.length + 1));
          }
        }
        int length = random.nextInt(10) == 0 ? random.nextInt() : body.length;
        raw.out.writeInt(length);
        raw.out.write(body);
        raw.out.flush();
        // Any answer (or a close) is fine; what matters is that the replica stays correct below.
        try {
          raw.receive();
        } catch (IOException ignored) {
          // closed or timed out waiting for a frame whose announced length never arrives
        }
      }
    }
    assertStillServes();
  }
}
