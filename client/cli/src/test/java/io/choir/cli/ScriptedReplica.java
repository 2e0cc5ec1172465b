package io.choir.cli;

import io.choir.proto.Request;
import io.choir.proto.Response;
import io.choir.proto.Status;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Function;

/**
 * ScriptedReplica is a fake replica for CLI tests: the client protocol's framing (4-byte length +
 * protobuf) over a plain socket on 127.0.0.1. Session requests are answered by it (a session of id
 * {@link #SESSION_ID}); every other request is recorded and answered by the script, which returns null
 * to leave it unanswered.
 */
final class ScriptedReplica implements AutoCloseable {
  static final long SESSION_ID = 6;

  private final ServerSocket server;
  private final Thread acceptor;
  private final Function<Request, Response> script;
  private final List<Request> received = new CopyOnWriteArrayList<>();

  ScriptedReplica(Function<Request, Response> script) throws IOException {
    this.script = script;
    this.server = new ServerSocket(0, 16, InetAddress.getByName("127.0.0.1"));
    this.acceptor = new Thread(() -> {
      while (!server.isClosed()) {
        try {
          Socket s = server.accept();
          Thread t = new Thread(() -> serve(s), "scripted-replica-conn");
          t.setDaemon(true);
          t.start();
        } catch (IOException e) {
          return; // closed
        }
      }
    }, "scripted-replica");
    acceptor.setDaemon(true);
    acceptor.start();
  }

  String address() {
    return "127.0.0.1:" + server.getLocalPort();
  }

  /** Every request other than the session's, in arrival order. */
  List<Request> received() {
    return List.copyOf(received);
  }

  private void serve(Socket socket) {
    try (socket; DataInputStream in = new DataInputStream(socket.getInputStream());
        DataOutputStream out = new DataOutputStream(socket.getOutputStream())) {
      while (true) {
        byte[] frame = new byte[in.readInt()];
        in.readFully(frame);
        Request r = Request.parseFrom(frame);
        Response reply;
        if (r.hasRegisterSession()) {
          reply = Response.newBuilder().setRequestId(r.getRequestId()).setStatus(Status.OK).setSessionId(SESSION_ID)
              .setOp(SESSION_ID).build();
        } else if (r.hasCloseSession()) {
          reply = Response.newBuilder().setRequestId(r.getRequestId()).setStatus(Status.OK).build();
        } else {
          received.add(r);
          reply = script.apply(r);
        }
        if (reply == null) {
          continue;
        }
        byte[] bytes = reply.toByteArray();
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

  @Override
  public void close() throws IOException {
    server.close();
    try {
      acceptor.join(5_000);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
