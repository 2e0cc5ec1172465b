package io.choir.examples;

import io.choir.client.ChoirClient;
import io.choir.client.Member;
import io.choir.client.Membership;
import io.choir.client.ReplicaInfo;
import io.choir.client.ReplicaStatusResult;
import java.io.PrintStream;

/**
 * ClusterStatus shows what a monitoring script or an operator tool reads: each endpoint's status (its
 * role, view, op, commit and applied numbers, or why it did not answer) and the membership as the
 * primary knows it (epoch, voters and learners, a change in progress).
 */
public final class ClusterStatus {
  private ClusterStatus() {}

  public static void main(String[] args) {
    try (ChoirClient client = ChoirClient.builder().endpoints(Endpoints.of(args)).build()) {
      run(client, System.out);
    }
  }

  static void run(ChoirClient client, PrintStream out) {
    for (ReplicaStatusResult r : client.status()) {
      if (r.isOk()) {
        ReplicaInfo s = r.info();
        out.println(r.endpoint() + ": replica " + s.id() + " " + s.role() + ", view " + s.view() + ", op " + s.op()
            + ", commit " + s.commit() + ", applied " + s.applied());
      } else {
        out.println(r.endpoint() + ": no answer (" + r.error().getMessage() + ")");
      }
    }
    Membership m = client.membership().members();
    out.println("membership epoch " + m.epoch() + (m.changeInProgress() ? ", a change in progress" : ""));
    for (Member member : m.members()) {
      out.println("  member " + member.id() + " " + member.role() + " client " + member.clientAddress()
          + " peer " + member.peerAddress());
    }
  }
}
