package io.choir.server.security;

import java.io.IOException;
import java.io.StringWriter;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.GeneralSecurityException;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.SecureRandom;
import java.security.cert.X509Certificate;
import java.security.spec.ECGenParameterSpec;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Date;
import java.util.List;
import java.util.Set;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.asn1.x509.BasicConstraints;
import org.bouncycastle.asn1.x509.ExtendedKeyUsage;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.asn1.x509.GeneralName;
import org.bouncycastle.asn1.x509.GeneralNames;
import org.bouncycastle.asn1.x509.KeyPurposeId;
import org.bouncycastle.asn1.x509.KeyUsage;
import org.bouncycastle.cert.X509CertificateHolder;
import org.bouncycastle.cert.X509v3CertificateBuilder;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.cert.jcajce.JcaX509ExtensionUtils;
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder;
import org.bouncycastle.openssl.jcajce.JcaPEMWriter;
import org.bouncycastle.openssl.jcajce.JcaPKCS8Generator;
import org.bouncycastle.operator.ContentSigner;
import org.bouncycastle.operator.OperatorCreationException;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;

/**
 * LocalCa is a small certificate authority for a local cluster and for tests (`choir cluster init
 * --tls`): a self-signed CA, server certificates with subject alternative names, and client
 * certificates whose subject CN names an identity of the access file. Keys are ECDSA P-256 (the JDK
 * generates them; BouncyCastle builds and signs the certificates), written as PEM (keys as unencrypted
 * PKCS#8, readable by the owner only). For production, use your organisation's CA: the replica only
 * reads PEM files.
 */
public final class LocalCa {
  /** How long the certificates of a local cluster are valid. */
  public static final Duration VALIDITY = Duration.ofDays(825);
  private static final String SIGNATURE = "SHA256withECDSA";

  /** A certificate and its private key. */
  public record Issued(X509Certificate certificate, KeyPair keys) {
    /** Writes the certificate (PEM, readable by all) and the key (PKCS#8 PEM, owner only). */
    public void write(Path certFile, Path keyFile) throws IOException {
      writePem(certFile, certificate, false);
      writePem(keyFile, new JcaPKCS8Generator(keys.getPrivate(), null), true);
    }
  }

  private final Issued ca;
  private final SecureRandom random;

  private LocalCa(Issued ca, SecureRandom random) {
    this.ca = ca;
    this.random = random;
  }

  /** A new self-signed CA named CN=cn. */
  public static LocalCa create(String cn, SecureRandom random) {
    try {
      KeyPair keys = newKeys(random);
      X500Name name = new X500Name("CN=" + cn);
      X509v3CertificateBuilder b = builder(name, name, keys, random);
      JcaX509ExtensionUtils ext = new JcaX509ExtensionUtils();
      b.addExtension(Extension.basicConstraints, true, new BasicConstraints(0));
      b.addExtension(Extension.keyUsage, true, new KeyUsage(KeyUsage.keyCertSign | KeyUsage.cRLSign));
      b.addExtension(Extension.subjectKeyIdentifier, false, ext.createSubjectKeyIdentifier(keys.getPublic()));
      return new LocalCa(new Issued(sign(b, keys), keys), random);
    } catch (GeneralSecurityException | IOException | OperatorCreationException e) {
      throw new IllegalStateException("cannot create a CA: " + e.getMessage(), e);
    }
  }

  public X509Certificate certificate() {
    return ca.certificate();
  }

  /** Writes the CA's certificate (and, when keyFile is not null, its key, owner only). */
  public void write(Path certFile, Path keyFile) throws IOException {
    writePem(certFile, ca.certificate(), false);
    if (keyFile != null) {
      writePem(keyFile, new JcaPKCS8Generator(ca.keys().getPrivate(), null), true);
    }
  }

  /** A server certificate for CN=cn, valid for the host names and IP addresses in sans. */
  public Issued issueServer(String cn, List<String> sans) {
    List<GeneralName> names = new ArrayList<>();
    for (String s : sans) {
      names.add(isIpLiteral(s) ? new GeneralName(GeneralName.iPAddress, s) : new GeneralName(GeneralName.dNSName, s));
    }
    return issue(cn, KeyPurposeId.id_kp_serverAuth, names);
  }

  /** A client certificate for CN=cn (the cert_cn of an access-file identity). */
  public Issued issueClient(String cn) {
    return issue(cn, KeyPurposeId.id_kp_clientAuth, List.of());
  }

  private Issued issue(String cn, KeyPurposeId purpose, List<GeneralName> sans) {
    try {
      KeyPair keys = newKeys(random);
      X509CertificateHolder issuer = new X509CertificateHolder(ca.certificate().getEncoded());
      X509v3CertificateBuilder b = builder(issuer.getSubject(), new X500Name("CN=" + cn), keys, random);
      JcaX509ExtensionUtils ext = new JcaX509ExtensionUtils();
      b.addExtension(Extension.basicConstraints, true, new BasicConstraints(false));
      b.addExtension(Extension.keyUsage, true, new KeyUsage(KeyUsage.digitalSignature | KeyUsage.keyAgreement));
      b.addExtension(Extension.extendedKeyUsage, false, new ExtendedKeyUsage(purpose));
      b.addExtension(Extension.subjectKeyIdentifier, false, ext.createSubjectKeyIdentifier(keys.getPublic()));
      b.addExtension(Extension.authorityKeyIdentifier, false, ext.createAuthorityKeyIdentifier(ca.certificate()));
      if (!sans.isEmpty()) {
        b.addExtension(Extension.subjectAlternativeName, false, new GeneralNames(sans.toArray(new GeneralName[0])));
      }
      return new Issued(sign(b, ca.keys()), keys);
    } catch (GeneralSecurityException | IOException | OperatorCreationException e) {
      throw new IllegalStateException("cannot issue a certificate for " + cn + ": " + e.getMessage(), e);
    }
  }

  private static X509v3CertificateBuilder builder(X500Name issuer, X500Name subject, KeyPair keys,
      SecureRandom random) {
    Instant now = Instant.now();
    // Backdated an hour, so a replica whose clock is a little behind does not see it as not yet valid.
    return new JcaX509v3CertificateBuilder(issuer, new BigInteger(127, random).add(BigInteger.ONE),
        Date.from(now.minus(Duration.ofHours(1))), Date.from(now.plus(VALIDITY)), subject, keys.getPublic());
  }

  private static X509Certificate sign(X509v3CertificateBuilder b, KeyPair signer)
      throws OperatorCreationException, GeneralSecurityException {
    ContentSigner s = new JcaContentSignerBuilder(SIGNATURE).build(signer.getPrivate());
    return new JcaX509CertificateConverter().getCertificate(b.build(s));
  }

  private static KeyPair newKeys(SecureRandom random) throws GeneralSecurityException {
    KeyPairGenerator g = KeyPairGenerator.getInstance("EC");
    g.initialize(new ECGenParameterSpec("secp256r1"), random);
    return g.generateKeyPair();
  }

  private static boolean isIpLiteral(String s) {
    return s.matches("[0-9.]+") || s.contains(":");
  }

  /** Writes one PEM object; a secret is created owner-only before any byte of it is written. */
  static void writePem(Path file, Object pem, boolean secret) throws IOException {
    StringWriter text = new StringWriter();
    try (JcaPEMWriter w = new JcaPEMWriter(text)) {
      w.writeObject(pem);
    }
    Path parent = file.toAbsolutePath().getParent();
    if (parent != null) {
      Files.createDirectories(parent);
    }
    if (secret) {
      Set<PosixFilePermission> owner = PosixFilePermissions.fromString("rw-------");
      Files.deleteIfExists(file);
      try {
        Files.createFile(file, PosixFilePermissions.asFileAttribute(owner));
      } catch (UnsupportedOperationException notPosix) {
        Files.createFile(file);
      }
      Files.writeString(file, text.toString(), StandardCharsets.US_ASCII, StandardOpenOption.TRUNCATE_EXISTING);
    } else {
      Files.writeString(file, text.toString(), StandardCharsets.US_ASCII);
    }
  }
}
