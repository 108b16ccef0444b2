/*
 * token.js: read (never verify: the server does) the room and participant an access token names,
 * so `connect({url, token})` needs nothing else, like Twilio's connect(token).
 */

function base64UrlDecode(text) {
  const padded = text.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (text.length % 4)) % 4);
  if (typeof atob === "function") {
    const binary = atob(padded);
    const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
    return new TextDecoder().decode(bytes);
  }
  return Buffer.from(padded, "base64").toString("utf8"); // node without atob
}

/** {roomSid, participantSid, expiresAt} of an access token; throws a clear Error if it is none. */
function tokenClaims(token) {
  const parts = typeof token === "string" ? token.split(".") : [];
  if (parts.length !== 3) throw new Error("NetQuality.connect: token is not an access token (mint one with `netquality token`)");
  let claims;
  try {
    claims = JSON.parse(base64UrlDecode(parts[1]));
  } catch (_) {
    throw new Error("NetQuality.connect: the access token's payload is not readable");
  }
  if (typeof claims.room !== "string" || typeof claims.sub !== "string") {
    throw new Error("NetQuality.connect: the access token names no room or participant");
  }
  return { roomSid: claims.room, participantSid: claims.sub, expiresAt: typeof claims.exp === "number" ? claims.exp * 1000 : null };
}

export { tokenClaims };
