package io.choir.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.choir.client.SessionExpiredException;
import io.choir.proto.Request;
import io.choir.proto.Response;
import io.choir.proto.Status;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import picocli.CommandLine;

/**
 * A CLI call must not leave a session behind (issue 9 item 2c): a write registers one and closes it
 * before the command exits; a read opens none. Checked against a fake replica that speaks the client
 * protocol's framing (4-byte length + protobuf) over a plain socket and records every request.
 */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class KvCommandsSessionTest {
  private static final long SESSION_ID = 6;

  private ServerSocket server;
  private final List<Request> received = new CopyOnWriteArrayList<>();
  private Thread acceptor;

  @BeforeEach
  void start() throws IOException {
    server = new ServerSocket(0, 16, InetAddress.getByName("127.0.0.1"));
    acceptor = new Thread(() -> {
      while (!server.isClosed()) {
        try {
          Socket s = server.accept();
          Thread t = new Thread(() -> serve(s), "fake-replica-conn");
          t.setDaemon(true);
          t.start();
        } catch (IOException e) {
          return; // closed
        }
      }
    }, "fake-replica");
    acceptor.setDaemon(true);
    acceptor.start();
  }

  @AfterEach
  void stop() throws Exception {
    server.close();
    acceptor.join(5_000);
  }

  private void serve(Socket socket) {
    try (socket; DataInputStream in = new DataInputStream(socket.getInputStream());
        DataOutputStream out = new DataOutputStream(socket.getOutputStream())) {
      while (true) {
        byte[] frame = new byte[in.readInt()];
        in.readFully(frame);
        Request r = Request.parseFrom(frame);
        received.add(r);
        Response.Builder reply = Response.newBuilder().setRequestId(r.getRequestId());
        switch (r.getOpCase()) {
          case GET -> reply.setStatus(Status.NOT_FOUND).setOp(7);
          case PUT -> reply.setStatus(Status.OK).setVersion(7).setOp(7);
          // A session's id comes from the replicas (the op of its registration).
          case REGISTER_SESSION -> reply.setStatus(Status.OK).setSessionId(SESSION_ID).setOp(SESSION_ID);
          default -> reply.setStatus(Status.OK);
        }
        byte[] bytes = reply.build().toByteArray();
        synchronized (out) {
          out.writeInt(bytes.length);
          out.write(bytes);
          out.flush();
        }
      }
    } catch (IOException e) {
      // the client closed the connection
    }
  }

  private int run(String... args) {
    CommandLine cl = Choir.commandLine();
    cl.setOut(new PrintWriter(new StringWriter()));
    cl.setErr(new PrintWriter(new StringWriter()));
    String[] all = new String[args.length + 2];
    all[0] = args[0];
    all[1] = "--endpoints=127.0.0.1:" + server.getLocalPort();
    all[2] = "--timeout-ms=3000";
    System.arraycopy(args, 1, all, 3, args.length - 1);
    return cl.execute(all);
  }

  @Test
  void shouldRegisterAndCloseTheSessionOfAWriteBeforeExiting() {
    assertEquals(Choir.EXIT_OK, run("put", "k", "v"));
    List<Request.OpCase> ops = received.stream().map(Request::getOpCase).toList();
    assertEquals(List.of(Request.OpCase.REGISTER_SESSION, Request.OpCase.PUT, Request.OpCase.CLOSE_SESSION), ops);
    assertTrue(received.get(0).getClientId() != SESSION_ID, "the registration carries the instance id");
    assertEquals(SESSION_ID, received.get(1).getClientId(), "the write carries the session's id");
    assertEquals(SESSION_ID, received.get(2).getClientId(), "and so does the CloseSession that ends it");
  }

  @Test
  void shouldOpenNoSessionForARead() {
    assertEquals(Choir.EXIT_NOT_FOUND, run("get", "k"));
    assertEquals(List.of(Request.OpCase.GET), received.stream().map(Request::getOpCase).toList());
  }

  @Test
  void shouldReportAnExpiredSessionAsItsOwnUnknownOutcome() {
    ClientOptions options = new ClientOptions();
    options.json = true;
    StringWriter out = new StringWriter();
    int code = options.fail(new PrintWriter(out, true), new PrintWriter(new StringWriter()),
        new SessionExpiredException("the outcome is unknown", null));
    assertEquals(Choir.EXIT_UNAVAILABLE, code);
    assertTrue(out.toString().contains("\"error\":\"session_expired\""), out.toString());
  }
}
