DROP TRIGGER IF EXISTS api_tokens_notify_auth ON api_tokens;
DROP FUNCTION IF EXISTS ahlt_auth_notify_token();
