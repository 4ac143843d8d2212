/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * A textual polkit agent (pkttyagent) for interactive authorization, started
 * the way systemctl does: only for a non-root caller with a terminal on
 * stdin, and only as a fallback (a desktop agent already registered for the
 * session keeps answering). The agent asks on the terminal when memcrd's
 * authorization check wants a password.
 */

/* 1 if an agent was started, 0 if none is needed or available, -errno. */
int polkit_agent_open(void);
void polkit_agent_close(void);
