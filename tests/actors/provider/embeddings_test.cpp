#include "actors/provider/embeddings.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <cmath>

using namespace squad;
using json = nlohmann::json;

TEST_CASE("embeddings: an input's shape is a string, strings, token ids or arrays of token ids", "[embeddings]") {
  CHECK(embed_input_of(R"("hello world")").inputs == 1);
  CHECK(embed_input_of(R"(["a", "b", "c"])").inputs == 3);
  CHECK(embed_input_of(R"([1, 2, 3])").inputs == 1);
  CHECK(embed_input_of(R"([1, 2, 3])").tokens == 3);
  CHECK(embed_input_of(R"([[1, 2], [3]])").inputs == 2);
  CHECK(embed_input_of(R"([[1, 2], [3]])").tokens == 3);
  CHECK(embed_input_of(R"([])").inputs == -1);
  CHECK(embed_input_of(R"([1.5])").inputs == -1);
  CHECK(embed_input_of(R"({"a": 1})").inputs == -1);
  CHECK(embed_input_of(R"(["a", 1])").inputs == -1);
}

TEST_CASE("embeddings: the request body carries the client's parameters and the target's model id", "[embeddings]") {
  call_request req;
  req.embed_input_json = R"(["a","b"])";
  req.params_json = R"({"dimensions":8,"user":"u","model":"client-name"})";
  auto body = json::parse(embeddings_body(req, "text-embedding-3-small"));
  CHECK(body == json{{"model", "text-embedding-3-small"}, {"input", {"a", "b"}}, {"dimensions", 8}, {"user", "u"}});
}

TEST_CASE("embeddings: a reply's data is kept verbatim; one without data is a bad response", "[embeddings]") {
  auto ok = parse_embeddings(
      R"({"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.5,-0.5]}],"usage":{"prompt_tokens":3}})");
  CHECK(ok.result == outcome::ok);
  CHECK(json::parse(ok.embeddings_json)[0]["embedding"] == json{0.5, -0.5});
  CHECK(ok.usage.prompt_tokens == 3);
  CHECK(parse_embeddings(R"({"data":[]})").result == outcome::bad_response);
  CHECK(parse_embeddings("not json").result == outcome::bad_response);
}

TEST_CASE("embeddings: the simulated vectors are unit length, per input, and the same for the same input",
          "[embeddings]") {
  auto a = json::parse(sim_embeddings(R"(["on", "off"])", 32).embeddings_json);
  auto b = json::parse(sim_embeddings(R"("on")", 32).embeddings_json);
  REQUIRE(a.size() == 2);
  REQUIRE(b.size() == 1);
  CHECK(a[0]["embedding"] == b[0]["embedding"]);
  CHECK(a[0]["embedding"] != a[1]["embedding"]);
  double norm = 0;
  for (auto& x : a[1]["embedding"])
    norm += x.get<double>() * x.get<double>();
  CHECK(std::abs(norm - 1) < 1e-9);
  CHECK(a[1]["index"] == 1);
}
