package io.choir.launcher;

import io.choir.cli.Choir;
import io.choir.server.security.AccessControl;
import java.security.SecureRandom;
import java.util.Base64;
import java.util.HexFormat;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/**
 * TokenCommand is `choir token`: a new random token (32 bytes, URL-safe base64) and the token_sha256
 * line that names it in an access file. The access file holds only the hash, so a copy of it grants
 * nothing; the token itself goes to the client ($CHOIR_TOKEN or --token).
 */
@Command(name = "token", mixinStandardHelpOptions = true,
    description = "Print a new random token and its token_sha256 for the access file.")
final class TokenCommand implements Callable<Integer> {
  /** Bytes of randomness in a token: 256 bits, beyond any guessing. */
  static final int TOKEN_BYTES = 32;

  @CommandLine.Spec CommandLine.Model.CommandSpec spec;

  @Override
  public Integer call() {
    byte[] raw = new byte[TOKEN_BYTES];
    new SecureRandom().nextBytes(raw);
    String token = Base64.getUrlEncoder().withoutPadding().encodeToString(raw);
    var out = spec.commandLine().getOut();
    out.println("token: " + token);
    out.println("token_sha256: " + HexFormat.of().formatHex(AccessControl.sha256(token)));
    out.flush();
    return Choir.EXIT_OK;
  }
}
