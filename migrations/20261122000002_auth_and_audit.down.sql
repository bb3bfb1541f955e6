DROP TABLE audit_log;
DROP TABLE login_attempts;
DROP TABLE sessions;
DROP TABLE api_tokens;
DROP TABLE user_credentials;
