package io.choir.sim;

import com.google.protobuf.ByteString;
import io.choir.proto.CompareAndSet;
import io.choir.proto.Get;
import io.choir.proto.Put;
import io.choir.proto.RegisterSession;
import io.choir.proto.Request;
import io.choir.proto.Response;
import io.choir.proto.Status;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;

/**
 * SimClients are the simulated clients: each runs one operation at a time (a read, a write or a
 * compare-and-set on a few keys), over a {@link SimStream} connection to one replica at a time,
 * retried with the same request id (on a redirect, a refusal, a broken connection or no answer) until
 * its deadline, and records the history the linearizability checker reads: ok, fail (certainly not
 * executed) or info (unknown: it may have executed).
 */
final class SimClients {
  static final long MS = 1_000_000L;
  private static final long ATTEMPT_TIMEOUT_NS = 300 * MS;
  private static final long OP_DEADLINE_NS = 4_000 * MS;

  private final Simulation sim;
  private final SimConfig cfg;
  private final SplittableRandom random;
  private final List<Client> clients = new ArrayList<>();
  private int nextProcess;
  private long nextClientId = 0x10000;

  /** One client: one operation at a time. */
  final class Client {
    final int index;
    /** The session's client id: a fresh one for every new session (a late retry of the old one's
     * requests must never find a new row that has not seen them). */
    long clientId;
    int process;
    int opsLeft;
    long nextRequestId = 1;
    Request current;
    SimHistory.F f;
    String key;
    Long value;
    Long expected;
    long invokedAtNs;
    boolean maybeExecuted;
    /** Attempts of the current operation sent on a connection (a write may have executed from any). */
    int sent;
    int attempt;
    int target = 1;
    SimStream.End connection;
    /** The session is registered, or its registration is under way (registering). */
    boolean registered;
    boolean registering;

    Client(int index, long clientId, int ops) {
      this.index = index;
      this.process = nextProcess++;
      this.clientId = clientId;
      this.opsLeft = ops;
    }

    boolean done() {
      return opsLeft == 0 && current == null;
    }
  }

  SimClients(Simulation sim, SimConfig cfg, SplittableRandom random) {
    this.sim = sim;
    this.cfg = cfg;
    this.random = random;
  }

  /** Starts every client a few ms into the run. */
  void start() {
    for (int i = 0; i < cfg.clients(); i++) {
      Client c = new Client(i, 0x1000L + i, cfg.opsPerClient());
      clients.add(c);
      sim.clock.after(random.nextLong(5 * MS), () -> nextOp(c));
    }
  }

  boolean allDone() {
    return clients.stream().allMatch(Client::done);
  }

  /** True when r, sent on the connection whose client end is clientEnd, acknowledges a write. */
  boolean acknowledgesWrite(SimStream.End clientEnd, Response r) {
    return clientEnd.tag instanceof Client c && r.getStatus() == Status.OK && c.current != null
        && !c.registering && c.f != SimHistory.F.READ && r.getRequestId() == c.current.getRequestId();
  }

  private void nextOp(Client c) {
    if (c.opsLeft == 0) {
      return;
    }
    c.key = "k" + random.nextInt(cfg.keys());
    long requestId = c.nextRequestId++;
    Request.Builder r = Request.newBuilder().setClientId(c.clientId).setRequestId(requestId)
        .setFirstIncomplete(requestId);
    if (!c.registered) {
      // Writes need a session (Raft thesis 6.3): the first request registers it, outside the history.
      c.registered = true;
      c.registering = true;
      c.current = r.setRegisterSession(RegisterSession.getDefaultInstance()).build();
      c.invokedAtNs = sim.clock.now();
      c.attempt = 0;
      attempt(c);
      return;
    }
    c.opsLeft--;
    if (random.nextInt(8) == 0) {
      // Now and then a client starts over at any replica (a restarted client process, a new
      // connection from its endpoint list): it must be redirected, and a backup must not answer it.
      c.target = 1 + random.nextInt(cfg.replicas());
    }
    ByteString key = ByteString.copyFromUtf8(c.key);
    int dice = random.nextInt(10);
    c.expected = null;
    if (dice < 4) {
      c.f = SimHistory.F.READ;
      c.value = null;
      r.setGet(Get.newBuilder().setKey(key));
    } else if (dice < 8) {
      c.f = SimHistory.F.WRITE;
      c.value = (long) random.nextInt(5);
      r.setPut(Put.newBuilder().setKey(key).setValue(ByteString.copyFromUtf8(String.valueOf(c.value))));
    } else {
      c.f = SimHistory.F.CAS;
      c.expected = (long) random.nextInt(5);
      c.value = (long) random.nextInt(5);
      r.setCompareAndSet(CompareAndSet.newBuilder().setKey(key)
          .setExpectedValue(ByteString.copyFromUtf8(String.valueOf(c.expected)))
          .setNewValue(ByteString.copyFromUtf8(String.valueOf(c.value))));
    }
    c.current = r.build();
    c.invokedAtNs = sim.clock.now();
    c.maybeExecuted = false;
    c.sent = 0;
    c.attempt = 0;
    sim.history.invoke(c.process, c.f, c.key, c.f == SimHistory.F.READ ? null : c.value, c.expected,
        sim.clock.now());
    attempt(c);
  }

  private void nextTarget(Client c) {
    c.target = c.target % cfg.replicas() + 1;
  }

  private void attempt(Client c) {
    Request req = c.current;
    int attemptNo = ++c.attempt;
    if (c.connection == null || c.connection.broken() || connectedTo(c) != c.target) {
      connect(c);
    }
    if (c.connection != null) {
      if (req.getOpCase() != Request.OpCase.GET) {
        c.maybeExecuted = true;
      }
      c.sent++;
      c.connection.send(req);
    }
    sim.clock.after(ATTEMPT_TIMEOUT_NS, () -> {
      if (c.current == req && c.attempt == attemptNo) {
        nextTarget(c); // no answer: try the next replica
        retryOrGiveUp(c);
      }
    });
  }

  private int connectedTo(Client c) {
    return c.connection == null ? 0 : c.connection.other().node;
  }

  /** Opens a connection to c's target; a replica that is down refuses it (the next is tried). */
  private void connect(Client c) {
    if (c.connection != null) {
      c.connection.close();
      c.connection = null;
    }
    SimReplica node = sim.node(c.target);
    if (!node.up) {
      nextTarget(c); // connection refused: the attempt times out and goes to the next one
      return;
    }
    SimStream stream = sim.connect(0, c.target);
    SimStream.End mine = stream.a;
    mine.tag = c;
    mine.handle(m -> onReply(c, (Response) m), why -> {
      if (c.connection == mine) {
        c.connection = null;
        onConnectionLost(c);
      }
    });
    node.acceptClient(stream.b);
    c.connection = mine;
  }

  /** The connection broke while an attempt waited: the request may have executed; try the next. */
  private void onConnectionLost(Client c) {
    if (c.current == null) {
      return;
    }
    sim.bump("client_connections_lost");
    nextTarget(c);
    int attemptNo = c.attempt;
    sim.clock.after(random.nextLong(5 * MS), () -> {
      if (c.current != null && c.attempt == attemptNo) {
        retryOrGiveUp(c);
      }
    });
  }

  private void retryOrGiveUp(Client c) {
    if (c.registering) {
      attempt(c); // a registration is retried until it succeeds (it is idempotent)
      return;
    }
    if (sim.clock.now() - c.invokedAtNs >= OP_DEADLINE_NS) {
      // Unknown outcome: Jepsen's info. The process may still be executing, so a fresh one continues.
      sim.history.complete(c.maybeExecuted ? SimHistory.Kind.INFO : SimHistory.Kind.FAIL, c.process, c.f, c.key,
          c.f == SimHistory.F.READ ? null : c.value, c.expected, sim.clock.now());
      sim.bump("ops_info");
      if (c.maybeExecuted) {
        c.process = nextProcess++;
      }
      finishOp(c);
      return;
    }
    attempt(c);
  }

  private void finishOp(Client c) {
    c.current = null;
    // Think time spreads a run over a few simulated seconds, so faults come and go while it runs.
    sim.clock.after(random.nextLong(60 * MS), () -> nextOp(c));
  }

  private void onReply(Client c, Response r) {
    if (c.current == null || r.getRequestId() != c.current.getRequestId()) {
      return; // the answer to an earlier attempt of an op already completed
    }
    long now = sim.clock.now();
    if (c.registering && r.getStatus() == Status.OK) {
      c.registering = false;
      c.current = null;
      sim.clock.after(0, () -> nextOp(c));
      return;
    }
    switch (r.getStatus()) {
      case OK, NOT_FOUND -> {
        Long read = null;
        if (c.f == SimHistory.F.READ && r.getStatus() == Status.OK) {
          read = Long.parseLong(r.getValue().toString(StandardCharsets.UTF_8));
        }
        sim.history.complete(SimHistory.Kind.OK, c.process, c.f, c.key,
            c.f == SimHistory.F.READ ? read : c.value, c.expected, now);
        sim.bump("ops_ok");
        finishOp(c);
      }
      case CAS_FAILED -> {
        sim.history.complete(SimHistory.Kind.FAIL, c.process, c.f, c.key, c.value, c.expected, now);
        sim.bump("ops_fail");
        finishOp(c);
      }
      case NOT_PRIMARY -> {
        sim.bump("ops_redirect");
        if (!r.getPrimaryAddress().isEmpty()) {
          c.target = Integer.parseInt(r.getPrimaryAddress());
        } else {
          nextTarget(c);
        }
        int attemptNo = c.attempt;
        sim.clock.after(random.nextLong(5 * MS), () -> {
          if (c.current != null && c.attempt == attemptNo) {
            retryOrGiveUp(c);
          }
        });
      }
      case UNAVAILABLE, BUSY -> {
        sim.bump("ops_retry_" + r.getStatus().name().toLowerCase(Locale.ROOT));
        if (r.getStatus() == Status.UNAVAILABLE) {
          nextTarget(c);
        }
        int attemptNo = c.attempt;
        sim.clock.after(20 * MS + random.nextLong(30 * MS), () -> {
          if (c.current != null && c.attempt == attemptNo) {
            retryOrGiveUp(c);
          }
        });
      }
      case SESSION_EXPIRED -> {
        // Not executed, this attempt; an earlier one may have been, and its saved reply went with the
        // session (client.proto). A fresh session under a new id goes on with the next operation.
        sim.bump("ops_session_expired");
        boolean unknown = c.sent > 1;
        sim.history.complete(unknown ? SimHistory.Kind.INFO : SimHistory.Kind.FAIL, c.process, c.f, c.key,
            c.f == SimHistory.F.READ ? null : c.value, c.expected, now);
        if (unknown) {
          c.process = nextProcess++;
        }
        c.clientId = nextClientId++;
        c.registered = false;
        finishOp(c);
      }
      default -> sim.violation("client " + c.index + " got " + r.getStatus() + ": " + r.getError());
    }
  }
}
