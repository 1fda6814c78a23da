// Put first on the include path of squad_logic (actors/CMakeLists.txt): pure logic knows nothing of actors.
#error "pure logic (squad_logic) must not include CAF: use actors/vocabulary.hpp, and keep actor code in squad_actors"
