/*
 * ivshmem_abi.c - names for the protocol's enums, used in messages and in
 * the CSV files so that a reader never has to decode a bare number.
 */
#include "ivshmem_abi.h"

const char *ivb_state_name(uint32_t state)
{
	switch (state) {
	case IVB_STATE_NONE: return "NONE";
	case IVB_STATE_RECEIVED: return "RECEIVED";
	case IVB_STATE_PROCESSED: return "PROCESSED";
	case IVB_STATE_ERROR: return "ERROR";
	}
	return "INVALID";
}

const char *ivb_command_name(uint32_t command)
{
	switch (command) {
	case IVB_CMD_NONE: return "none";
	case IVB_CMD_PING: return "ping";
	case IVB_CMD_FRAME: return "frame";
	case IVB_CMD_STOP: return "stop";
	case IVB_CMD_STREAM: return "stream";
	case IVB_CMD_LIMITS: return "limits";
	case IVB_CMD_CHAIN: return "chain";
	}
	return "invalid";
}

const char *ivb_error_name(uint32_t error)
{
	switch (error) {
	case IVB_OK: return "ok";
	case IVB_ERR_BAD_COMMAND: return "bad_command";
	case IVB_ERR_BAD_SIZE: return "bad_size";
	case IVB_ERR_DIGEST: return "digest";
	case IVB_ERR_NO_MEMORY: return "no_memory";
	case IVB_ERR_CRYPTO: return "crypto";
	case IVB_ERR_BAD_HEADER: return "bad_header";
	case IVB_ERR_MODE: return "mode_mismatch";
	case IVB_ERR_STALLED: return "stalled";
	case IVB_ERR_BAD_INDEX: return "bad_index";
	case IVB_ERR_TOO_MANY_BAD: return "too_many_bad_messages";
	case IVB_ERR_SECOND_WRITER: return "forged_ack";
	}
	return "invalid";
}

const char *ivb_mode_name(uint32_t mode)
{
	switch (mode) {
	case IVB_MODE_PLAIN: return "plain";
	case IVB_MODE_DOORBELL: return "doorbell";
	}
	return "invalid";
}
