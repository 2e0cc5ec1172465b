package io.choir.client;

import io.choir.proto.Request;
import io.choir.proto.Response;
import io.choir.proto.Status;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;

/**
 * ModelCluster is an abstract Choir cluster on a {@link SimNet}, for the client's property test. It
 * keeps what the client's promises are about and nothing else: which writes executed (by key), the
 * session table with saved replies (Raft thesis 6.3, as KvStateMachine keeps it), a log of admitted
 * writes that commit a little later, and a primary that changes with the view. Its faults are the ones
 * the client must survive without saying anything false: a view change whose uncommitted entries may
 * still commit (the old primary answers NOT_PRIMARY with outcome_unknown), a paused replica (requests
 * held until it resumes; a paused primary is replaced), a dropped connection, every session expiring,
 * backups that lag a view behind, and a session table that is full.
 */
final class ModelCluster {
  private static final long MS = 1_000_000L;

  /** A write in the log, not yet committed, with the connections waiting for its answer. */
  private static final class Pending {
    final Request request;
    final List<SimNet.Conn> waiters = new ArrayList<>();

    Pending(Request request) {
      this.request = request;
    }
  }

  private static final class ModelSession {
    final Map<Long, Response> saved = new HashMap<>();
    long firstIncomplete;
  }

  final List<String> addresses;
  final Map<String, Integer> executions = new HashMap<>();
  final List<String> violations = new ArrayList<>();
  int stragglers;
  final Map<Long, ModelSession> sessions = new HashMap<>();
  /** Every session id a request other than a registration has carried: the sessions clients knew. */
  final Set<Long> usedSessions = new HashSet<>();
  final List<String> faults = new ArrayList<>();
  /** Every request and execution, when tracing (for replaying a failing seed). */
  final List<String> trace = new ArrayList<>();
  boolean tracing;
  private final SimClock clock;
  private final Random random;
  private final int maxSessions;
  private final Map<String, Pending> log = new LinkedHashMap<>(); // "client:id" -> pending
  private final Set<Integer> paused = new HashSet<>();
  private final Map<Integer, List<Runnable>> held = new HashMap<>();
  private int primary;
  private long view = 1;
  private long lastOp = 100;
  /** Until this time every replica answers UNAVAILABLE (a view change in progress). */
  private long viewChangeUntilNs;
  /** The primary is cut off from its backups: it still logs writes but cannot commit them. */
  private boolean isolated;
  /** No more faults of the model's own making (the freeze after executing). */
  private boolean calm;

  ModelCluster(SimClock clock, SimNet net, Random random, int replicas, int maxSessions) {
    this.clock = clock;
    this.random = random;
    this.maxSessions = maxSessions;
    List<String> all = new ArrayList<>();
    for (int i = 0; i < replicas; i++) {
      String address = "10.0.0." + (i + 1) + ":7301";
      all.add(address);
      int index = i;
      net.replica(address, (conn, request) -> onRequest(index, conn, request));
    }
    this.addresses = List.copyOf(all);
  }

  boolean quiet() {
    return log.isEmpty() && paused.isEmpty();
  }

  private void onRequest(int replica, SimNet.Conn conn, Request request) {
    if (tracing) {
      trace.add(clock.nanoTime() / MS + "ms r" + replica + (paused.contains(replica) ? "(paused)" : "")
          + " <- c" + request.getClientId() + " id " + request.getRequestId() + " " + request.getOpCase()
          + (request.hasPut() ? " " + request.getPut().getKey().toStringUtf8() : "") + " fi " + request.getFirstIncomplete()
          + " view " + view + " primary " + primary);
    }
    if (paused.contains(replica)) {
      held.computeIfAbsent(replica, k -> new ArrayList<>()).add(() -> onRequest(replica, conn, request));
      return;
    }
    if (!request.hasRegisterSession() && !request.hasGet() && !request.hasScan()) {
      usedSessions.add(request.getClientId());
    }
    if (clock.nanoTime() < viewChangeUntilNs) {
      conn.reply(refusal(request, Status.UNAVAILABLE, "", view));
      return;
    }
    if (replica != primary) {
      // A backup names the primary; one in five lags a view behind and names the previous one.
      boolean lagging = view > 1 && random.nextInt(5) == 0;
      long v = lagging ? view - 1 : view;
      String hint = lagging ? addresses.get((int) ((view - 1) % addresses.size())) : addresses.get(primary);
      conn.reply(refusal(request, Status.NOT_PRIMARY, hint, v));
      return;
    }
    switch (request.getOpCase()) {
      case GET, SCAN -> conn.reply(Response.newBuilder().setRequestId(request.getRequestId())
          .setStatus(Status.NOT_FOUND).setOp(lastOp).build());
      default -> admit(conn, request);
    }
  }

  private void admit(SimNet.Conn conn, Request request) {
    String key = request.getClientId() + ":" + request.getRequestId();
    Pending pending = log.get(key);
    if (pending != null) {
      pending.waiters.add(conn); // a retry of an entry already in the log waits for it
      return;
    }
    Pending p = new Pending(request);
    p.waiters.add(conn);
    log.put(key, p);
    long admittedInView = view;
    clock.schedule(() -> commit(key, p, admittedInView), (1 + random.nextInt(4)) * MS);
  }

  /**
   * Commits the log up to p, in log order (a commit number advances over a prefix, as in VR: an entry
   * never commits before one admitted ahead of it), unless a view change resolved p first; a paused
   * primary commits when it resumes.
   */
  private void commit(String key, Pending p, long admittedInView) {
    if (view != admittedInView || log.get(key) != p) {
      return;
    }
    if (paused.contains(primary)) {
      held.computeIfAbsent(primary, k -> new ArrayList<>()).add(() -> commit(key, p, admittedInView));
      return;
    }
    if (isolated) {
      clock.schedule(() -> commit(key, p, admittedInView), 10 * MS); // no quorum yet
      return;
    }
    List<Pending> prefix = new ArrayList<>();
    for (var it = log.entrySet().iterator(); it.hasNext(); ) {
      Map.Entry<String, Pending> e = it.next();
      prefix.add(e.getValue());
      it.remove();
      if (e.getValue() == p) {
        break;
      }
    }
    List<Runnable> answers = new ArrayList<>();
    for (Pending q : prefix) {
      Response reply = apply(q.request);
      answers.add(() -> {
        for (SimNet.Conn waiter : q.waiters) {
          waiter.reply(reply);
        }
      });
    }
    Runnable answer = () -> answers.forEach(Runnable::run);
    if (!calm && random.nextInt(60) == 0) {
      // Frozen (SIGSTOP) right after executing, before answering: the answer comes on resume.
      int frozen = primary;
      pause(frozen, (300 + random.nextInt(3_000)) * MS);
      held.computeIfAbsent(frozen, k -> new ArrayList<>()).add(0, answer);
    } else {
      answer.run();
    }
  }

  /** Executes one committed entry, exactly as the replicas' state machine decides it. */
  private Response apply(Request r) {
    Response reply1 = apply0(r);
    if (tracing) {
      trace.add(clock.nanoTime() / MS + "ms apply c" + r.getClientId() + " id " + r.getRequestId() + " " + r.getOpCase()
          + (r.hasPut() ? " " + r.getPut().getKey().toStringUtf8() : "") + " -> " + reply1.getStatus());
    }
    return reply1;
  }

  private Response apply0(Request r) {
    Response.Builder reply = Response.newBuilder().setRequestId(r.getRequestId());
    long client = r.getClientId();
    ModelSession session = sessions.get(client);
    switch (r.getOpCase()) {
      case REGISTER_SESSION -> {
        // A new session every time, whose id is the registration's op (never reused).
        if (sessions.size() >= maxSessions) {
          return reply.setStatus(Status.BUSY).setError("session table full").build();
        }
        session = new ModelSession();
        session.firstIncomplete = r.getFirstIncomplete();
        long id = ++lastOp;
        sessions.put(id, session);
        return reply.setStatus(Status.OK).setSessionId(id).setOp(id).build();
      }
      case CLOSE_SESSION -> {
        sessions.remove(client);
        return reply.setStatus(Status.OK).build();
      }
      default -> { }
    }
    if (session == null) {
      return reply.setStatus(Status.SESSION_EXPIRED).setError("session not registered").build();
    }
    Response saved = session.saved.get(r.getRequestId());
    if (saved != null) {
      return saved;
    }
    if (r.getRequestId() < session.firstIncomplete) {
      // A straggler (held by a paused replica) of a call the client has finished: refused, as the real
      // state machine does. Were the client still waiting for it, the call would end in
      // InvalidRequestException, which the test counts as a failure.
      stragglers++;
      return reply.setStatus(Status.INVALID).setError("already acknowledged").build();
    }
    executions.merge(r.getPut().getKey().toStringUtf8(), 1, Integer::sum);
    Response ok = reply.setStatus(Status.OK).setVersion(++lastOp).setOp(lastOp).build();
    session.saved.put(r.getRequestId(), ok);
    if (r.getFirstIncomplete() > session.firstIncomplete) {
      session.firstIncomplete = r.getFirstIncomplete();
      session.saved.keySet().removeIf(id -> id < r.getFirstIncomplete());
    }
    return ok;
  }

  /**
   * A view change: the next replica becomes primary. Every entry the old primary had logged but not
   * committed either commits in the new view or is dropped (each with probability 1/2), and the old
   * primary, unless paused, answers its waiters NOT_PRIMARY with outcome_unknown: it cannot know which.
   */
  void viewChange() {
    int old = primary;
    isolated = false;
    // The primary of view v is v mod n (VR Revisited 4.1); a paused replica takes no part in a view
    // change, so a view whose primary is paused never forms and the next one is tried.
    do {
      view++;
    } while (paused.contains((int) (view % addresses.size())) && paused.size() < addresses.size());
    primary = (int) (view % addresses.size());
    // Most view changes are over in milliseconds; some take seconds (retries meet UNAVAILABLE until
    // the deadline, so a call whose entry committed anyway must not end as "not executed").
    viewChangeUntilNs = clock.nanoTime() + (random.nextInt(3) == 0 ? 500 + random.nextInt(2_500) : 1 + random.nextInt(50)) * MS;
    faults.add(clock.nanoTime() / MS + "ms view " + view + " primary " + primary);
    for (Pending p : List.copyOf(log.values())) {
      log.remove(p.request.getClientId() + ":" + p.request.getRequestId());
      if (random.nextBoolean()) {
        apply(p.request); // committed in the new view; the client learns it from a retry's saved reply
      }
      Runnable answer = () -> {
        for (SimNet.Conn waiter : p.waiters) {
          waiter.reply(refusal(p.request, Status.NOT_PRIMARY, addresses.get(primary), view).toBuilder()
              .setOutcomeUnknown(true).build());
        }
      };
      if (paused.contains(old)) {
        held.computeIfAbsent(old, k -> new ArrayList<>()).add(answer);
      } else {
        answer.run();
      }
    }
  }

  /** Pauses replica for durationNs; a paused primary is replaced after an election timeout or so. */
  void pause(int replica, long durationNs) {
    if (!paused.add(replica)) {
      return;
    }
    faults.add(clock.nanoTime() / MS + "ms pause " + replica + " for " + durationNs / MS + "ms");
    if (replica == primary) {
      long electionNs = (500 + random.nextInt(1200)) * MS;
      if (electionNs < durationNs) {
        clock.schedule(() -> {
          if (primary == replica) {
            viewChange();
          }
        }, electionNs);
      }
    }
    clock.schedule(() -> {
      paused.remove(replica);
      faults.add(clock.nanoTime() / MS + "ms resume " + replica);
      List<Runnable> todo = held.remove(replica);
      if (todo != null) {
        todo.forEach(Runnable::run);
      }
    }, durationNs);
  }

  /**
   * Cuts the primary off from its backups (clients still reach it) for long enough that the others
   * elect a new primary; it learns of the new view at once and answers its waiters outcome_unknown
   * (issue 9 item 2a), often before a client's attempt timeout.
   */
  void isolatePrimary(long electionNs) {
    isolated = true;
    long inView = view;
    faults.add(clock.nanoTime() / MS + "ms isolate primary " + primary + " for " + electionNs / MS + "ms");
    clock.schedule(() -> {
      if (view == inView) {
        viewChange();
      }
    }, electionNs);
  }

  void expireSessions() {
    faults.add(clock.nanoTime() / MS + "ms sessions expire");
    sessions.clear();
  }

  /** From now on the model injects no fault by itself. */
  void calm() {
    calm = true;
  }

  int primary() {
    return primary;
  }

  private static Response refusal(Request r, Status status, String primary, long view) {
    return Response.newBuilder().setRequestId(r.getRequestId()).setStatus(status).setPrimaryAddress(primary)
        .setView(view).build();
  }
}
