package io.choir.server.security;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import com.google.protobuf.ByteString;
import io.choir.proto.BatchOp;
import io.choir.proto.Request;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import javax.naming.InvalidNameException;
import javax.naming.ldap.LdapName;
import javax.naming.ldap.Rdn;
import javax.security.auth.x500.X500Principal;

/**
 * AccessControl decides, from the access file (setting access_file), who a client connection is and
 * whether that identity may make a request. Pure: no I/O after loading, no clocks; the Netty edge
 * ({@code ClientAccessHandler}) asks it before a request reaches the core, so a denied request is
 * never executed.
 *
 * <p>The file (YAML):
 * <pre>
 * identities:
 *   - name: root                 # shown in PERMISSION_DENIED messages
 *     cert_cn: root              # a client certificate whose subject CN is root; or
 *     # cert_dn: "CN=root,O=ops" # its whole subject (RFC 2253, compared canonically); or
 *     # token_sha256: 64 hex     # a token whose SHA-256 this is (`choir token` makes one); or
 *     # anonymous: true          # any connection no other entry names
 *     permissions:
 *       - prefix: ""             # UTF-8 key prefix; "" is every key
 *         access: readwrite      # read | readwrite
 * </pre>
 * A connection is the identity of the token it authenticated with, else the first entry that names
 * its certificate's subject, else the anonymous entry, else nobody (who may do nothing).
 *
 * <p>What each request needs: get, read on its key; scan, read on one prefix that contains the whole
 * range [start, end) (an empty end only with the prefix ""); put, delete and compare-and-set,
 * read-write on the key (a failed compare-and-set answers the current value, so it reads too); a
 * batch, read-write on the key of every op, and the first op that lacks it is named; register and
 * close session, read-write on some prefix (a session only serves writes, and the session table is
 * shared by everyone, so read-only identities may not fill it); status, any identity the file names
 * (it shows the cluster's state, not data); a watch, read on its key (with prefix: on a prefix that holds
 * the watched prefix). Without an access file everyone may do everything
 * ({@link #OPEN}).
 */
public final class AccessControl {
  /** read (get, scan) or readwrite (also put, delete, compare-and-set, batch, sessions). */
  public enum Access { READ, READWRITE }

  /** One prefix and what the identity may do under it. */
  public record Permission(ByteString prefix, Access access) {}

  /** An identity of the access file (or {@link #NOBODY}). */
  public record Identity(String name, List<Permission> permissions) {
    public Identity {
      permissions = List.copyOf(permissions);
    }
  }

  /** A refusal: the message for the client, and the batch op at fault (-1 when not a batch). */
  public record Denial(String message, int failedIndex) {}

  /** The identity of a connection the file does not name: it may do nothing. */
  public static final Identity NOBODY = new Identity("(unknown)", List.of());

  /** No access file: everyone may do everything. */
  public static final AccessControl OPEN = new AccessControl(List.of(), false);

  /** Most bytes of a key shown in a message: enough to recognise it, not a copy of a big key. */
  static final int MAX_KEY_SHOWN = 64;

  private record Entry(Identity identity, String cn, X500Principal dn, byte[] tokenSha256, boolean anonymous) {}

  private final List<Entry> entries;
  private final boolean enabled;

  private AccessControl(List<Entry> entries, boolean enabled) {
    this.entries = List.copyOf(entries);
    this.enabled = enabled;
  }

  /** Whether an access file is in force (else every request is allowed). */
  public boolean enabled() {
    return enabled;
  }

  /** Loads and checks an access file; IllegalArgumentException says what is wrong and where. */
  public static AccessControl load(Path file) {
    try {
      return parse(Files.readString(file, StandardCharsets.UTF_8));
    } catch (IOException e) {
      throw new IllegalArgumentException("cannot read access file " + file + ": " + e.getMessage(), e);
    }
  }

  /** Parses the YAML text of an access file. */
  public static AccessControl parse(String yaml) {
    JsonNode root;
    try {
      root = new ObjectMapper(new YAMLFactory()).readTree(yaml);
    } catch (IOException e) {
      throw new IllegalArgumentException("the access file is not valid YAML: " + e.getMessage(), e);
    }
    if (root == null || !root.isObject() || !root.has("identities") || !root.get("identities").isArray()) {
      throw new IllegalArgumentException("the access file must be a mapping with a list 'identities'");
    }
    onlyFields(root, "the access file", "identities");
    List<Entry> entries = new ArrayList<>();
    int i = 0;
    for (JsonNode n : root.get("identities")) {
      entries.add(entry(n, i++));
    }
    for (int a = 0; a < entries.size(); a++) {
      for (int b = a + 1; b < entries.size(); b++) {
        if (entries.get(a).identity().name().equals(entries.get(b).identity().name())) {
          throw new IllegalArgumentException("identity name '" + entries.get(b).identity().name() + "' appears twice");
        }
      }
    }
    return new AccessControl(entries, true);
  }

  private static Entry entry(JsonNode n, int index) {
    String where = "identities[" + index + "]";
    if (!n.isObject()) {
      throw new IllegalArgumentException(where + " must be a mapping");
    }
    onlyFields(n, where, "name", "cert_cn", "cert_dn", "token_sha256", "anonymous", "permissions");
    String name = text(n, "name", where);
    if (name == null || name.isBlank()) {
      throw new IllegalArgumentException(where + " needs a name");
    }
    where = "identity '" + name + "'";
    String cn = text(n, "cert_cn", where);
    String dn = text(n, "cert_dn", where);
    String token = text(n, "token_sha256", where);
    boolean anonymous = n.has("anonymous") && n.get("anonymous").asBoolean(false);
    int ways = (cn != null ? 1 : 0) + (dn != null ? 1 : 0) + (token != null ? 1 : 0) + (anonymous ? 1 : 0);
    if (ways != 1) {
      throw new IllegalArgumentException(where + " needs exactly one of cert_cn, cert_dn, token_sha256 or"
          + " anonymous: true");
    }
    X500Principal principal = null;
    if (dn != null) {
      try {
        principal = new X500Principal(dn);
      } catch (IllegalArgumentException e) {
        throw new IllegalArgumentException(where + ": cert_dn '" + dn + "' is not a distinguished name: "
            + e.getMessage(), e);
      }
    }
    byte[] hash = null;
    if (token != null) {
      try {
        hash = HexFormat.of().parseHex(token.trim().toLowerCase(Locale.ROOT));
      } catch (IllegalArgumentException e) {
        hash = null;
      }
      if (hash == null || hash.length != 32) {
        throw new IllegalArgumentException(where + ": token_sha256 must be 64 hex digits (the SHA-256 of the token)");
      }
    }
    JsonNode perms = n.get("permissions");
    if (perms == null || !perms.isArray()) {
      throw new IllegalArgumentException(where + " needs a list 'permissions' (it may be empty)");
    }
    List<Permission> permissions = new ArrayList<>();
    for (JsonNode p : perms) {
      if (!p.isObject() || !p.has("prefix") || !p.has("access")) {
        throw new IllegalArgumentException(where + ": every permission has a prefix and an access");
      }
      onlyFields(p, where + "'s permission", "prefix", "access");
      String access = p.get("access").asText().toLowerCase(Locale.ROOT).replace("-", "").replace("_", "");
      Access a = switch (access) {
        case "read" -> Access.READ;
        case "readwrite" -> Access.READWRITE;
        default -> throw new IllegalArgumentException(where + ": access must be read or readwrite, got '"
            + p.get("access").asText() + "'");
      };
      permissions.add(new Permission(ByteString.copyFromUtf8(p.get("prefix").asText()), a));
    }
    return new Entry(new Identity(name, permissions), cn, principal, hash, anonymous);
  }

  private static String text(JsonNode n, String field, String where) {
    JsonNode v = n.get(field);
    if (v == null || v.isNull()) {
      return null;
    }
    if (!v.isValueNode()) {
      throw new IllegalArgumentException(where + ": " + field + " must be a single value");
    }
    return v.asText();
  }

  private static void onlyFields(JsonNode n, String where, String... known) {
    for (Iterator<String> it = n.fieldNames(); it.hasNext(); ) {
      String f = it.next();
      if (!List.of(known).contains(f)) {
        throw new IllegalArgumentException(where + ": unknown field '" + f + "' (known: " + List.of(known) + ")");
      }
    }
  }

  /** Whether some identity is named by a certificate (cert_cn or cert_dn): they need client_auth. */
  public boolean namesCertificates() {
    return entries.stream().anyMatch(e -> e.cn() != null || e.dn() != null);
  }

  /** The identity of a connection with this certificate subject (null: no certificate). */
  public Identity forCertificate(X500Principal subject) {
    if (subject != null) {
      String cn = commonName(subject);
      for (Entry e : entries) {
        if ((e.dn() != null && e.dn().equals(subject)) || (e.cn() != null && e.cn().equals(cn))) {
          return e.identity();
        }
      }
    }
    return anonymous();
  }

  /**
   * The identity whose token this is, or null when no entry has it. Every token entry is compared, in
   * constant time, so the answer's timing does not tell how much of a hash matched.
   */
  public Identity forToken(String token) {
    byte[] hash = sha256(token);
    Identity found = null;
    for (Entry e : entries) {
      if (e.tokenSha256() != null && MessageDigest.isEqual(e.tokenSha256(), hash) && found == null) {
        found = e.identity();
      }
    }
    return found;
  }

  /** The identity of a connection nothing else names: the anonymous entry, or {@link #NOBODY}. */
  public Identity anonymous() {
    for (Entry e : entries) {
      if (e.anonymous()) {
        return e.identity();
      }
    }
    return NOBODY;
  }

  /** The SHA-256 of a token (UTF-8), as token_sha256 holds it in hex. */
  public static byte[] sha256(String token) {
    try {
      return MessageDigest.getInstance("SHA-256").digest(token.getBytes(StandardCharsets.UTF_8));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("the JDK has no SHA-256", e);
    }
  }

  /** The CN of a subject, or null when it has none. */
  static String commonName(X500Principal subject) {
    try {
      LdapName name = new LdapName(subject.getName(X500Principal.RFC2253));
      for (Rdn rdn : name.getRdns()) {
        if (rdn.getType().equalsIgnoreCase("CN")) {
          return String.valueOf(rdn.getValue());
        }
      }
    } catch (InvalidNameException e) {
      return null;
    }
    return null;
  }

  /** Null when identity may make request, else why not. */
  public Denial check(Identity identity, Request request) {
    if (!enabled) {
      return null;
    }
    return switch (request.getOpCase()) {
      case GET -> need(identity, request.getGet().getKey(), Access.READ, "get", -1);
      case PUT -> need(identity, request.getPut().getKey(), Access.READWRITE, "put", -1);
      case DELETE -> need(identity, request.getDelete().getKey(), Access.READWRITE, "delete", -1);
      case COMPARE_AND_SET -> need(identity, request.getCompareAndSet().getKey(), Access.READWRITE,
          "compare-and-set", -1);
      case SCAN -> scan(identity, request.getScan().getStartKey(), request.getScan().getEndKey());
      case BATCH -> batch(identity, request.getBatch().getOpsList());
      case REGISTER_SESSION, CLOSE_SESSION -> anyWrite(identity) ? null : new Denial("identity '" + identity.name()
          + "' has no read-write permission, so it may not open or close a session (writes need one)", -1);
      case STATUS -> identity == NOBODY ? new Denial("this connection's identity is not in the access file"
          + " (no known certificate, no token), so it may not ask for status", -1) : null;
      // A membership change: read-write on every key (the prefix ""), as an operator's identity has.
      case MEMBER_CHANGE -> need(identity, ByteString.EMPTY, Access.READWRITE, "member change", -1);
      case LIST_MEMBERS -> identity == NOBODY ? new Denial("this connection's identity is not in the access file"
          + " (no known certificate, no token), so it may not list the members", -1) : null;
      // Leases (docs/lease.md): granting and keeping alive need a read-write permission (as sessions);
      // revoking deletes the lease's keys, whichever they are, so it needs read-write on every key.
      case LEASE_GRANT, LEASE_KEEP_ALIVE -> anyWrite(identity) ? null : new Denial("identity '" + identity.name()
          + "' has no read-write permission, so it may not grant or keep alive a lease", -1);
      case LEASE_REVOKE -> need(identity, ByteString.EMPTY, Access.READWRITE, "lease revoke", -1);
      case LEASE_LIST -> identity == NOBODY ? new Denial("this connection's identity is not in the access file"
          + " (no known certificate, no token), so it may not list the leases", -1) : null;
      // A watch reads its key, or every key under its prefix: read permission on a prefix that holds it.
      case WATCH -> need(identity, request.getWatch().getKey(), Access.READ,
          request.getWatch().getPrefix() ? "watch of prefix" : "watch", -1);
      case CANCEL_WATCH -> null; // only ever of this connection's own watches
      // No op: not ours to judge; the core answers INVALID.
      case OP_NOT_SET -> null;
    };
  }

  private Denial batch(Identity identity, List<BatchOp> ops) {
    for (int i = 0; i < ops.size(); i++) {
      BatchOp op = ops.get(i);
      ByteString key = switch (op.getOpCase()) {
        case PUT -> op.getPut().getKey();
        case DELETE -> op.getDelete().getKey();
        case COMPARE_AND_SET -> op.getCompareAndSet().getKey();
        case OP_NOT_SET -> null;
      };
      if (key == null) {
        continue; // malformed: the core refuses the batch as INVALID
      }
      Denial d = need(identity, key, Access.READWRITE, "batch operation " + i, i);
      if (d != null) {
        return d;
      }
    }
    return null;
  }

  private static boolean anyWrite(Identity identity) {
    for (Permission p : identity.permissions()) {
      if (p.access() == Access.READWRITE) {
        return true;
      }
    }
    return false;
  }

  private static Denial need(Identity identity, ByteString key, Access access, String what, int index) {
    for (Permission p : identity.permissions()) {
      if (allows(p.access(), access) && key.startsWith(p.prefix())) {
        return null;
      }
    }
    return new Denial(what + ": identity '" + identity.name() + "' has no " + name(access) + " permission on key "
        + show(key) + " (" + describe(identity) + ")", index);
  }

  private static Denial scan(Identity identity, ByteString start, ByteString end) {
    for (Permission p : identity.permissions()) {
      if (allows(p.access(), Access.READ) && within(p.prefix(), start, end)) {
        return null;
      }
    }
    return new Denial("scan: identity '" + identity.name() + "' has no read permission on a prefix that holds"
        + " the whole range [" + show(start) + ", " + (end.isEmpty() ? "end of keys" : show(end)) + ") ("
        + describe(identity) + "; a scan must lie within one permitted prefix)", -1);
  }

  /**
   * Whether every key of [start, end) (empty end: no upper bound) has prefix: start is at least the
   * prefix, and end is at most the first key past every key with the prefix (the prefix with its last
   * byte below 0xFF incremented; none for "" or all 0xFF, which reach the end of the key space).
   */
  static boolean within(ByteString prefix, ByteString start, ByteString end) {
    if (ByteString.unsignedLexicographicalComparator().compare(start, prefix) < 0) {
      return false;
    }
    ByteString past = successor(prefix);
    if (past == null) {
      return true;
    }
    return !end.isEmpty() && ByteString.unsignedLexicographicalComparator().compare(end, past) <= 0;
  }

  /** The least key above every key with prefix, or null when no such key exists. */
  static ByteString successor(ByteString prefix) {
    byte[] b = prefix.toByteArray();
    for (int i = b.length - 1; i >= 0; i--) {
      if (b[i] != (byte) 0xFF) {
        byte[] out = Arrays.copyOf(b, i + 1);
        out[i]++;
        return ByteString.copyFrom(out);
      }
    }
    return null;
  }

  private static boolean allows(Access granted, Access needed) {
    return granted == Access.READWRITE || needed == Access.READ;
  }

  private static String name(Access a) {
    return a == Access.READ ? "read" : "read-write";
  }

  private static String describe(Identity identity) {
    if (identity.permissions().isEmpty()) {
      return identity == NOBODY ? "this connection's certificate and token name no identity of the access file"
          : "it has no permissions";
    }
    StringBuilder sb = new StringBuilder("it has:");
    int shown = 0;
    for (Permission p : identity.permissions()) {
      if (shown++ == 8) {
        sb.append(" ...");
        break;
      }
      sb.append(' ').append(name(p.access())).append(" on ").append(p.prefix().isEmpty() ? "every key" : show(p.prefix()));
      sb.append(',');
    }
    sb.setLength(sb.length() - (sb.charAt(sb.length() - 1) == ',' ? 1 : 0));
    return sb.toString();
  }

  /** A key as a quoted string when it is printable UTF-8, else hex; cut at MAX_KEY_SHOWN bytes. */
  static String show(ByteString key) {
    ByteString cut = key.size() > MAX_KEY_SHOWN ? key.substring(0, MAX_KEY_SHOWN) : key;
    String suffix = key.size() > MAX_KEY_SHOWN ? "...(" + key.size() + " bytes)" : "";
    if (cut.isValidUtf8()) {
      String s = cut.toStringUtf8();
      if (s.codePoints().allMatch(c -> c >= 0x20 && c != 0x7F)) {
        return "\"" + s.replace("\\", "\\\\").replace("\"", "\\\"") + "\"" + suffix;
      }
    }
    return "0x" + HexFormat.of().formatHex(cut.toByteArray()) + suffix;
  }
}
