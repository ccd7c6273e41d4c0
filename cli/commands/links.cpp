// clovisctl links: the WAN links clovisd steers over, their state and traffic.
#include <memory>

#include "app.hpp"
#include "client.hpp"
#include "exit_codes.hpp"
#include "render/links.hpp"

namespace clovis::cli::commands {

namespace {

int run_links(Output output, Context& ctx) {
  return read_command(ctx, "links", &v1::Agent::Stub::ListLinks, v1::ListLinksRequest(),
                      [&](const v1::ListLinksResponse& resp) {
                        if (output == Output::kJson)
                          *ctx.out << nlohmann::json{{"links", render::links_json(resp.links())}}.dump(2) << "\n";
                        else
                          render::links_table(*ctx.out, resp.links(), output == Output::kWide, render::now_unix_ms());
                      });
}

}  // namespace

void add_links(CLI::App& app, Context& ctx) {
  auto output = std::make_shared<Output>(Output::kTable);
  auto* cmd = app.add_subcommand("links", "Show the WAN links: state, since when, traffic, rates, flows");
  add_output_option(cmd, output.get());
  on_run(cmd, ctx, [output, &ctx] { return run_links(*output, ctx); });
}

}  // namespace clovis::cli::commands
