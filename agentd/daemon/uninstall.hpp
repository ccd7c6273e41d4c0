// clovisd --uninstall: takes out of the kernel (of the current network
// namespace) everything clovis put there, by what identifies it as clovis's,
// not only by what the state directory remembers, so that what an older
// release or a lost state directory left behind goes too:
//
//  - attachments: the pinned TCX links, the recorded legacy tc filters, and
//    any other legacy filter with clovis's priority, handle and a clv_
//    program on any interface;
//  - ip rules (both families) with protocol 0xc1, which every clovis rule
//    carries, and rules without it that match a link of the persisted or a
//    historical mapping exactly (fwmark/0xffffffff lookup TABLE, preference
//    in --rule-pref .. +CLV_MAX_LINKS);
//  - routes with protocol 0xc1 in any table, and every route in the tables
//    those rules and the mappings' links name;
//  - permanent neighbours with protocol 0xc1 (gateway-mac since this
//    release), and permanent ones whose address and MAC are a gateway-mac of
//    the persisted or a historical mapping (made before the tag);
//  - the pinned maps and the pin directory.
#pragma once

#include "daemon/daemon.hpp"

namespace clovis::agent {

// Returns the process exit code: 0 when everything found was removed.
int uninstall(const DaemonOptions& o);

}  // namespace clovis::agent
