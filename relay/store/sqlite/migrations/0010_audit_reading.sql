-- qp audit reads the trail by time, actor and event: without these a long trail
-- would be scanned whole for each page.
CREATE INDEX audit_at ON audit (at);
CREATE INDEX audit_actor ON audit (actor, id);
CREATE INDEX audit_event ON audit (event, id);
