package io.choir.cli;

import com.google.protobuf.ByteString;
import io.choir.proto.KeyValue;
import io.choir.proto.MemberRole;
import io.choir.proto.MemberStatus;
import io.choir.proto.MembershipInfo;
import io.choir.proto.ReplicaStatus;
import io.choir.proto.Request;
import io.choir.proto.Response;
import io.choir.proto.Status;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.Writer;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import picocli.CommandLine;

/**
 * CdsTraining is the representative CLI run the distribution build makes its class-data-sharing
 * archive with (deploy/pom.xml runs it under {@code -XX:ArchiveClassesAtExit}): every class the client
 * commands load on their way (picocli's model, the client library, Netty, protobuf, Jackson for --json)
 * is then read from the archive, already parsed and verified, instead of from the jars. It runs the
 * commands in this JVM against a stand-in replica on a loopback port of its own (it answers every request
 * with a plausible OK: the replies' content does not matter, only the code paths they take), and once
 * against a port where nothing listens. Its output is discarded; exit 0 unless a command failed in a way
 * that shows the training did not take the normal paths.
 */
public final class CdsTraining {
  private CdsTraining() {}

  public static void main(String[] args) throws IOException {
    int failures = 0;
    try (StandIn replica = new StandIn()) {
      String e = "--endpoints=" + replica.address();
      failures += run(0, "put", "training/key", "value", e);
      failures += run(0, "get", "training/key", e);
      failures += run(0, "get", "training/key", "--sequential", "--json", e);
      failures += run(0, "cas", "training/key", "value", "next", e);
      failures += run(0, "delete", "training/key", e);
      failures += run(0, "scan", "training/", "training0", "--limit", "10", e);
      failures += run(0, "status", e);
      failures += run(0, "member", "list", e);
      failures += run(0, "lease", "list", e);
    }
    failures += run(Choir.EXIT_UNAVAILABLE, "get", "training/key", "--endpoints=127.0.0.1:" + freePort());
    failures += run(Choir.EXIT_USAGE, "get");
    System.exit(failures == 0 ? 0 : 1);
  }

  /** Runs one command as `choir` would; returns 1 when its exit code is not the expected one. */
  private static int run(int expected, String... args) {
    CommandLine cl = Choir.commandLine(args);
    cl.setOut(new PrintWriter(Writer.nullWriter()));
    cl.setErr(new PrintWriter(Writer.nullWriter()));
    int code = cl.execute(args);
    if (code != expected) {
      System.err.println("cds training: choir " + String.join(" ", args) + " exited " + code + ", expected " + expected);
      return 1;
    }
    return 0;
  }

  private static int freePort() throws IOException {
    try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      return s.getLocalPort();
    }
  }

  /**
   * StandIn answers the client protocol (4-byte length + protobuf) on 127.0.0.1 with an OK for every
   * request, one thread per connection. Only for training: it keeps no data.
   */
  private static final class StandIn implements AutoCloseable {
    private final ServerSocket server;

    StandIn() throws IOException {
      server = new ServerSocket(0, 16, InetAddress.getLoopbackAddress());
      Thread acceptor = new Thread(this::accept, "cds-training-replica");
      acceptor.setDaemon(true);
      acceptor.start();
    }

    String address() {
      return "127.0.0.1:" + server.getLocalPort();
    }

    private void accept() {
      while (!server.isClosed()) {
        try {
          Socket s = server.accept();
          Thread t = new Thread(() -> serve(s), "cds-training-conn");
          t.setDaemon(true);
          t.start();
        } catch (IOException e) {
          return; // closed
        }
      }
    }

    private static void serve(Socket socket) {
      try (socket; DataInputStream in = new DataInputStream(socket.getInputStream());
          DataOutputStream out = new DataOutputStream(socket.getOutputStream())) {
        while (true) {
          byte[] frame = new byte[in.readInt()];
          in.readFully(frame);
          byte[] reply = answer(Request.parseFrom(frame)).toByteArray();
          out.writeInt(reply.length);
          out.write(reply);
          out.flush();
        }
      } catch (IOException e) {
        // the client closed the connection
      }
    }

    private static Response answer(Request r) {
      Response.Builder b = Response.newBuilder().setRequestId(r.getRequestId()).setStatus(Status.OK).setOp(2)
          .setVersion(2);
      MembershipInfo members = MembershipInfo.newBuilder().setEpoch(1).addMembers(MemberStatus.newBuilder()
          .setId(1).setClientAddress("127.0.0.1:7301").setPeerAddress("127.0.0.1:7401").setRole(MemberRole.VOTER))
          .build();
      switch (r.getOpCase()) {
        case REGISTER_SESSION -> b.setSessionId(1).setOp(1);
        case GET -> b.setValue(ByteString.copyFromUtf8("value"));
        case DELETE -> b.setExisted(true);
        case SCAN -> b.addKvs(KeyValue.newBuilder().setKey(ByteString.copyFromUtf8("training/key"))
            .setValue(ByteString.copyFromUtf8("value")).setVersion(2));
        case STATUS -> b.setReplicaStatus(ReplicaStatus.newBuilder().setId(1).setRole("primary").setOp(2).setCommit(2)
            .setApplied(2).setClusterId("training").setPrimaryId(1).setDurability("fsync").setEpoch(1)
            .addAllMembers(members.getMembersList()).setMemberRole(MemberRole.VOTER).putCounters("lag", 0));
        case LIST_MEMBERS -> b.setMembership(members);
        default -> { }
      }
      return b.build();
    }

    @Override
    public void close() throws IOException {
      server.close();
    }
  }
}
