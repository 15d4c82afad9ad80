/**
 * Every message of the wire protocol as plain data. docs/protocol.md documents the bytes.
 * A frame is `type: u8 | length: u32 BE | payload`, at most MAX_FRAME bytes in all.
 */
export const HEADER_SIZE = 5;
export const MAX_FRAME = 8192;
export const MAX_PAYLOAD = MAX_FRAME - HEADER_SIZE;
export const PROTOCOL_VERSION = 2;
/** CHALLENGE's nonce and PROOF's HMAC-SHA256 tag: fixed sizes, no length prefix. */
export const NONCE_BYTES = 32;
export const MAC_BYTES = 32;
/**
 * Frames the server decodes ahead on one connection, and the most BATCH frames it groups into
 * one run (one pool task, one ack write). A connection's memory is then one run being stored
 * and one window decoded ahead, at most 8 KiB a frame: ~1 MiB.
 */
export const BATCH_WINDOW = 64;
/**
 * Batches the project's client keeps in flight: two of the server's windows. The server takes
 * one as a run; the next waits in the socket buffers, so the next run is there as soon as the
 * one before is stored, without waiting for the client to hear the acks and send more. (A
 * server before the fix of the session's resume, 1c6ed62, stalls a client that keeps more than
 * its window of 32 in flight: upgrade servers before clients.)
 */
export const SEND_WINDOW = 2 * BATCH_WINDOW;

export const MessageType = {
  HELLO: 0x01,
  WELCOME: 0x02,
  BATCH: 0x03,
  BATCH_ACK: 0x04,
  FINISHED: 0x05,
  FINISHED_ACK: 0x06,
  WINNERS_QUERY: 0x07,
  WINNERS: 0x08,
  NOT_READY: 0x09,
  ERROR: 0x0a,
  PING: 0x0b,
  PONG: 0x0c,
  CHALLENGE: 0x0d,
  PROOF: 0x0e,
} as const;
export type MessageType = (typeof MessageType)[keyof typeof MessageType];

const TYPE_NAMES = new Map<number, string>(Object.entries(MessageType).map(([k, v]) => [v, k]));
export function isMessageType(type: number): type is MessageType {
  return TYPE_NAMES.has(type);
}
export function messageTypeName(type: number): string {
  return TYPE_NAMES.get(type) ?? `0x${type.toString(16).padStart(2, '0')}`;
}

/** OUT_OF_ORDER: the batch neither continues nor repeats the agency's stored bets; resume from `next`. */
export const AckStatus = { STORED: 0, REJECTED: 1, DUPLICATE: 2, OUT_OF_ORDER: 3 } as const;
export type AckStatus = (typeof AckStatus)[keyof typeof AckStatus];

export const ErrorCode = {
  FRAME_TOO_LARGE: 1,
  UNKNOWN_TYPE: 2,
  MALFORMED: 3,
  NOT_BOUND: 4,
  ALREADY_BOUND: 5,
  UNKNOWN_AGENCY: 6,
  AGENCY_BUSY: 7,
  WRONG_AGENCY: 8,
  UNEXPECTED_MESSAGE: 9,
  SHUTTING_DOWN: 10,
  INTERNAL: 11,
  BAD_VERSION: 12,
  AUTH_FAILED: 13,
  BUSY: 14,
  REPLACED: 15,
  AUTH_TIMEOUT: 16,
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export interface Frame {
  type: number;
  payload: Buffer;
}

export interface HelloDTO {
  type: typeof MessageType.HELLO;
  version: number;
  agency: number;
}
/**
 * `next`: index, in the agency's stream of valid bets, of the first bet the server does not
 * hold durably (the client resumes there); `finished`: the agency's FINISHED is on disk.
 */
export interface WelcomeDTO {
  type: typeof MessageType.WELCOME;
  agency: number;
  next: number;
  finished: boolean;
}
/** Sent right after a HELLO for a known agency: a fresh random nonce for the PROOF. */
export interface ChallengeDTO {
  type: typeof MessageType.CHALLENGE;
  nonce: Buffer;
}
/** HMAC-SHA256 over the challenge (see docs/protocol.md); 32 zero bytes when the client has no key. */
export interface ProofDTO {
  type: typeof MessageType.PROOF;
  mac: Buffer;
}
/**
 * A batch as it crosses the wire: `bets` holds the encoded bets, left undecoded on the
 * main thread; a pool worker decodes and validates them (see bet-codec.ts). `first` is the
 * index of its first bet in the agency's stream of valid bets: (agency, first, count) is the
 * batch's idempotency key.
 */
export interface BatchDTO {
  type: typeof MessageType.BATCH;
  first: number;
  count: number;
  bets: Buffer;
}
export type BatchAckDTO =
  | { type: typeof MessageType.BATCH_ACK; first: number; status: typeof AckStatus.STORED | typeof AckStatus.DUPLICATE; count: number }
  | { type: typeof MessageType.BATCH_ACK; first: number; status: typeof AckStatus.REJECTED; index: number; reason: string }
  | { type: typeof MessageType.BATCH_ACK; first: number; status: typeof AckStatus.OUT_OF_ORDER; next: number };
/** The course's FIRST_NOTIFICATION: the agency has sent all its bets. */
export interface NotificationDTO {
  type: typeof MessageType.FINISHED;
  notification: 'FIRST_NOTIFICATION';
  agency: number;
}
export interface FinishedAckDTO {
  type: typeof MessageType.FINISHED_ACK;
  finished: number;
  expected: number;
}
export interface WinnersQueryDTO {
  type: typeof MessageType.WINNERS_QUERY;
  agency: number;
}
/** Winners may span several frames; `last` marks the final one. */
export interface WinnersDTO {
  type: typeof MessageType.WINNERS;
  last: boolean;
  documents: string[];
}
export interface NotReadyDTO {
  type: typeof MessageType.NOT_READY;
  finished: number;
  expected: number;
}
export interface ErrorDTO {
  type: typeof MessageType.ERROR;
  code: number;
  message: string;
}
export interface PingDTO {
  type: typeof MessageType.PING;
}
export interface PongDTO {
  type: typeof MessageType.PONG;
  finished: number;
  expected: number;
  drawn: boolean;
}

export type Message =
  | HelloDTO
  | WelcomeDTO
  | BatchDTO
  | BatchAckDTO
  | NotificationDTO
  | FinishedAckDTO
  | WinnersQueryDTO
  | WinnersDTO
  | NotReadyDTO
  | ErrorDTO
  | PingDTO
  | PongDTO
  | ChallengeDTO
  | ProofDTO;
