import { ErrorCode, MAX_PAYLOAD } from './messages.js';

/** A peer broke the protocol. `code` is what goes into the ERROR message sent back. */
export class ProtocolError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string) {
    super(message);
    this.name = new.target.name;
    this.code = code;
  }
}

export class FrameTooLargeError extends ProtocolError {
  constructor(length: number) {
    super(
      ErrorCode.FRAME_TOO_LARGE,
      `frame payload of ${length} bytes exceeds the ${MAX_PAYLOAD}-byte limit (8 KiB per frame, header included); split the batch`,
    );
  }
}

export class UnknownMessageTypeError extends ProtocolError {
  constructor(type: number) {
    super(ErrorCode.UNKNOWN_TYPE, `unknown message type 0x${type.toString(16).padStart(2, '0')}; see docs/protocol.md for the valid types`);
  }
}

export class MalformedMessageError extends ProtocolError {
  constructor(what: string) {
    super(ErrorCode.MALFORMED, `malformed message: ${what}`);
  }
}
