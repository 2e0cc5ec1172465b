package io.choir.tests;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * AckFilter makes one replica deaf to acknowledgements, and only to them: an nftables rule on loopback
 * drops the PREPARE_OK and HEARTBEAT_OK datagrams that arrive at its peer (UDP) port, matched by the
 * message type byte of the datagram header (payload offset 5, see DatagramHeader). Everything else
 * passes, NACKs included, so backups still repair from that primary; they hold what it sent, while its
 * commit number stays where it was. The test fault file cannot do this: it cuts a peer off entirely.
 *
 * <p>The rule lives in a table of its own named after the port, so it touches no other traffic; the
 * caller holds that port's block (ProcessCluster), and a table left by a killed test JVM is removed
 * before a new one is made. Needs root and the nft command (CI has both).
 */
final class AckFilter implements AutoCloseable {
  private static final int PREPARE_OK = 2;
  private static final int HEARTBEAT_OK = 13;
  private final String table;
  private boolean open;

  /** Starts dropping acknowledgements to UDP port on loopback. */
  AckFilter(int port) throws IOException, InterruptedException {
    this.table = "choir_e2e_acks_" + port;
    nft(false, "delete", "table", "inet", table); // a leftover of a killed run, if any
    nft(true, "add", "table", "inet", table);
    open = true;
    nft(true, "add", "chain", "inet", table, "in", "{ type filter hook input priority -10; policy accept; }");
    // @th,104,8: 8 bits at bit 104 of the transport header = byte 5 after the 8-byte UDP header.
    nft(true, "add", "rule", "inet", table, "in", "iifname", "lo", "udp", "dport", String.valueOf(port),
        "@th,104,8", "{ " + PREPARE_OK + ", " + HEARTBEAT_OK + " }", "counter", "drop");
  }

  /** True when nftables can be used here (root and the nft command). */
  static boolean available() {
    try {
      return nft(false, "list", "tables").exitCode == 0;
    } catch (IOException | InterruptedException e) {
      return false;
    }
  }

  /** Datagrams dropped so far. */
  long dropped() throws IOException, InterruptedException {
    Result r = nft(true, "list", "table", "inet", table);
    Matcher m = Pattern.compile("counter packets (\\d+)").matcher(r.output);
    return m.find() ? Long.parseLong(m.group(1)) : 0;
  }

  /** Removes the rule (idempotent). */
  @Override
  public void close() {
    if (open) {
      open = false;
      try {
        nft(true, "delete", "table", "inet", table);
      } catch (IOException | InterruptedException e) {
        throw new IllegalStateException("could not remove nftables table " + table + "; remove it by hand", e);
      }
    }
  }

  private record Result(int exitCode, String output) {}

  private static Result nft(boolean mustSucceed, String... args) throws IOException, InterruptedException {
    List<String> cmd = new ArrayList<>();
    cmd.add("nft");
    cmd.addAll(List.of(args));
    Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    if (!p.waitFor(10, TimeUnit.SECONDS)) {
      p.destroyForcibly();
      throw new IOException("nft " + String.join(" ", args) + " did not finish");
    }
    if (mustSucceed && p.exitValue() != 0) {
      throw new IOException("nft " + String.join(" ", args) + " failed: " + out);
    }
    return new Result(p.exitValue(), out);
  }
}
