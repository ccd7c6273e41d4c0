// clovisctl links: the WAN links clovisd steers over, their state and traffic.
#include <memory>

#include "app.hpp"
#include "client.hpp"
#include "exit_codes.hpp"
#include "render/links.hpp"

namespace clovis::cli::commands {

namespace {

void run_links(Output output, Context& ctx) {
  auto client = Client::open(ctx, "links");
  if (!client) return;
  v1::ListLinksResponse resp;
  if (!client->call(&v1::Agent::Stub::ListLinks, v1::ListLinksRequest(), &resp)) return;
  if (output == Output::kJson) *ctx.out << nlohmann::json{{"links", render::links_json(resp.links())}}.dump(2) << "\n";
  else render::links_table(*ctx.out, resp.links(), output == Output::kWide, render::now_unix_ms());
  ctx.exit_code = kExitOk;
}

}  // namespace

void add_links(CLI::App& app, Context& ctx) {
  auto output = std::make_shared<Output>(Output::kTable);
  auto* cmd = app.add_subcommand("links", "Show the WAN links: state, since when, traffic, rates, flows");
  add_output_option(cmd, output.get());
  cmd->callback([output, &ctx] { run_links(*output, ctx); });
}

}  // namespace clovis::cli::commands
